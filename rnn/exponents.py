"""The largest Lyapunov exponent of a map, and of a trained RNN run closed-loop (plain NumPy).

Method (Benettin et al. 1980, tangent form): iterate the map x_{t+1} = F(x_t) together with a tangent
vector v_{t+1} = DF(x_t) v_t, renormalise v to unit length after every step and record the log of
its growth; the exponent per step is the mean log growth after a transient (during which x settles on
its attractor and v turns towards the most expanding direction). Its standard error comes from batch
means: each chain's recorded steps are cut into ``blocks`` consecutive blocks, and the block means of
all chains are treated as independent draws (valid while a block is much longer than the correlation
time of the log growth; 10 blocks of 1000 steps are ample for the maps tested here).

``rnn_exponent`` applies it to the network's closed loop (``rnn.model.free_run``): the state is what
``free_run`` carries, z_t = (h_t, y_t), and one step is

    h_{t+1} = f(y_t w_xh + b_h + h_t w_hh)      y_{t+1} = h_{t+1} w_ho + b_o [+ y_t w_xo]

so y_t, the next input, is part of the state. Without the skip weight y_t is a function of h_t and
the extra coordinate only adds a zero eigenvalue: the exponent is that of the map on h alone, whose
matrix is w_hh + w_ho w_xh; with it, y carries its own memory (y_t w_xo) and must be in the state.
The tangent map is the same recurrence linearised, with f' taken from h (as ``rnn.model.activation_slope``):

    dh_{t+1} = f'(h_{t+1}) * (dy_t w_xh + dh_t w_hh)      dy_{t+1} = dh_{t+1} w_ho [+ dy_t w_xo]

What the value says: positive, the model is chaotic, and e^-exponent bounds how fast its own
continuations can separate (1 / exponent steps per e-fold, to set beside the data's Lyapunov time);
near 0, a limit cycle or torus; negative, the closed loop settles on a stable fixed point (then the
exponent is the log of the largest |eigenvalue| of the Jacobian there, and ``fixed_point`` is True) or a
stable cycle. A run whose state overflows gives NaN with ``diverged`` True. A tangent map that
annihilates every direction (every relu unit off, or a zero matrix) gives -inf: the map is
superstable there, and -inf is its exact exponent.

Cost (one BLAS thread, a shared 2-core machine): K=5 stacked H=60 models, 4 chains, 10000 + 1000
steps: 0.5-0.8 s in all (0.1-0.15 s per model); H=400: 7-11 s (two (C, H) x (H, H) products per step
and model dominate: the cost grows as K C H^2 (steps + transient)).
"""

from collections.abc import Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from .settings import definition

NONLINEARITIES = tuple(definition("setting_properties")["properties"]["nonlinearity"]["enum"])

METHOD = ("tangent-vector Benettin (1980) iteration of the closed loop, renormalised every step; "
          "standard error from batch means over blocks and chains")


def largest_exponent_map(advance, x0, steps, transient=0, blocks=10, seed=0, v0=None):
    """Largest Lyapunov exponent per step of a map, with its standard error.

    ``advance(x, v) -> (F(x), DF(x) v)`` acts on states x (*batch, C, n) and tangent vectors of the same
    shape: C chains (independent starts) for each of the systems in *batch. The tangent vectors start at
    ``v0`` ((C, n) or the full shape), else at a random (C, n) draw from ``seed``, the same for every system
    (so a system gives the same numbers alone or in a batch). Returns a dict of arrays over *batch:
    ``exponent`` (mean log growth per step over chains and steps), ``stderr`` (batch means: ``blocks``
    blocks per chain), ``per_chain`` (*batch, C), ``diverged`` (a state went non-finite: exponent NaN),
    the last state ``x`` (*batch, C, n) and the one before it, ``x_before``.
    """
    steps, transient, blocks = int(steps), int(transient), int(blocks)
    if blocks < 1 or steps < blocks:
        raise ValueError(f"need steps >= blocks >= 1, got steps={steps}, blocks={blocks}")
    x = np.array(x0, dtype=float)
    if x.ndim < 2:
        raise ValueError(f"x0 must have shape (*batch, chains, n), got {x.shape}")
    v = np.random.default_rng(seed).normal(size=x.shape[-2:]) if v0 is None else v0
    v = np.broadcast_to(np.asarray(v, dtype=float), x.shape)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    finite = np.isfinite(x).all(axis=-1)
    growth = np.empty((steps,) + x.shape[:-1])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for t in range(transient + steps):
            x_before = x
            x, v = advance(x, v)
            norm = np.linalg.norm(v, axis=-1)
            v = v / np.where(norm > 0, norm, 1.0)[..., None]  # a zero vector stays zero: log 0 = -inf after
            finite &= np.isfinite(x).all(axis=-1)
            if t >= transient:
                growth[t - transient] = np.log(norm)
    per_chain = np.where(finite, growth.mean(axis=0), np.nan)  # (*batch, C)
    block_means = growth[: steps - steps % blocks].reshape((blocks, steps // blocks) + growth.shape[1:]).mean(axis=1)
    block_means = np.moveaxis(block_means, 0, -1).reshape(per_chain.shape[:-1] + (-1,))  # (*batch, C * blocks)
    diverged = ~finite.all(axis=-1)
    n = block_means.shape[-1]
    with np.errstate(invalid="ignore"):
        stderr = block_means.std(axis=-1, ddof=1) / np.sqrt(n) if n > 1 else np.full(diverged.shape, np.nan)
        exponent = np.where(diverged, np.nan, per_chain.mean(axis=-1))
    stderr = np.where(diverged | ~np.isfinite(exponent), np.nan, stderr)
    return {"exponent": exponent, "stderr": stderr, "per_chain": per_chain, "diverged": diverged,
            "x": x, "x_before": x_before}


def tangent_map(step, jacobian):
    """``advance`` for ``largest_exponent_map`` from a map ``step(x)`` and its Jacobian ``jacobian(x)`` (..., n, n)."""
    return lambda x, v: (step(x), np.einsum("...ij,...j->...i", jacobian(x), v))


# NumPy twins of rnn.model's PyTensor _activation and activation_slope (the finite-difference test pins
# them to the closed loop); kept apart so that this module leaves the model's source, which keys every
# training job, untouched.
def activation(name, z):
    """f(z) of ``rnn.model``'s nonlinearities, in NumPy."""
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow in exp
    if name == "relu":
        return np.maximum(z, 0.0)
    return z


def activation_slope(name, h):
    """f'(z) written in terms of h = f(z) (relu: 1 where h > 0, else 0), as ``rnn.model.activation_slope``."""
    if name == "tanh":
        return 1.0 - h**2
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "relu":
        return (h > 0).astype(float)
    return np.ones_like(h)


def _nonlinearity(spec):
    """The nonlinearity's name from a ``Spec``, a mapping or the name itself; ValueError if unknown."""
    name = spec if isinstance(spec, str) else spec["nonlinearity"] if isinstance(spec, Mapping) else spec.nonlinearity
    if name not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {', '.join(NONLINEARITIES)}; got {name!r}")
    return name


def _weights(params):
    """Stacked params shaped to act on (K, C, .) rows: w_xh (K,1,H) w_hh (K,H,H) b_h (K,1,H) w_ho (K,H,1)
    b_o (K,1,1) w_xo (K,1,1), the last 0 without a skip weight."""
    p = {n: np.asarray(v, dtype=float) for n, v in params.items()}
    K = p["w_hh"].shape[0]
    return {"w_xh": p["w_xh"], "w_hh": p["w_hh"], "b_h": p["b_h"][:, None, :], "w_ho": p["w_ho"],
            "b_o": p["b_o"][:, :, None], "w_xo": p["w_xo"] if "w_xo" in p else np.zeros((K, 1, 1))}


def closed_loop(params, spec):
    """``advance(z, dz)`` of the closed loop on states z = (h, y) (K, C, H + 1), for ``largest_exponent_map``."""
    f, w = _nonlinearity(spec), _weights(params)

    def advance(z, dz):
        h, y, dh, dy = z[..., :-1], z[..., -1:], dz[..., :-1], dz[..., -1:]
        # the state's and the tangent's products in one: w_hh is read from memory once a step (a
        # 400-unit reservoir's step takes half the time; each row's product is the same either way)
        chains = h.shape[-2]
        both = np.concatenate([h, dh], axis=-2) @ w["w_hh"]
        h_next = activation(f, y * w["w_xh"] + w["b_h"] + both[..., :chains, :])
        dh_next = activation_slope(f, h_next) * (dy * w["w_xh"] + both[..., chains:, :])
        y_next = h_next @ w["w_ho"] + w["b_o"] + y * w["w_xo"]
        dy_next = dh_next @ w["w_ho"] + dy * w["w_xo"]
        return np.concatenate([h_next, y_next], axis=-1), np.concatenate([dh_next, dy_next], axis=-1)

    return advance


def warmed_up(params, spec, warmup):
    """Closed-loop states z = (h, y) (K, C, H + 1) after teacher-forcing each column of ``warmup`` (T, C) from h = 0."""
    f, w = _nonlinearity(spec), _weights(params)
    u = np.asarray(warmup, dtype=float)
    u = u[:, None] if u.ndim == 1 else u
    K, H = w["w_hh"].shape[:2]
    h = np.zeros((K, u.shape[1], H))
    for u_t in u:
        h = activation(f, u_t[None, :, None] * w["w_xh"] + w["b_h"] + h @ w["w_hh"])
    y = h @ w["w_ho"] + w["b_o"] + u[-1][None, :, None] * w["w_xo"]
    return np.concatenate([h, y], axis=-1)


def rnn_exponent(params, spec, warmup, steps=10000, transient=1000, blocks=10, seed=0):
    """Largest Lyapunov exponent per sample of each stacked model's closed loop (K models, C chains).

    ``params``: stacked parameters as ``rnn.model.init_params`` makes them (w_xh (K,1,H), w_hh (K,H,H),
    b_h (K,H), w_ho (K,H,1), b_o (K,1), optional w_xo (K,1,1)); ``spec``: a ``Spec``, a dict or the name
    of the nonlinearity; ``warmup`` (T, C): C series segments (``rnn.generation.warmup_inputs``), each
    teacher-forced from h = 0 to start one chain. Returns a dict of (K,) arrays: ``exponent`` per sample,
    ``stderr``, ``lyapunov_time_steps`` (1 / exponent where positive, else NaN), ``diverged`` (the state
    overflowed: exponent NaN), ``fixed_point`` (every chain stopped moving: the exponent is the log of
    the largest |eigenvalue| of the Jacobian there), ``per_chain`` (K, C) and the settings.
    """
    with threadpool_limits(limits=1):  # one BLAS thread, as a workflow job: the same last bits, faster here
        z0 = warmed_up(params, spec, warmup)
        run = largest_exponent_map(closed_loop(params, spec), z0, steps, transient, blocks, seed)
    moved = np.abs(run["x"] - run["x_before"]).max(axis=-1)  # (K, C)
    scale = 1.0 + np.abs(run["x"]).max(axis=-1)
    fixed_point = (moved <= 1e-12 * scale).all(axis=-1) & ~run["diverged"]
    exponent = run["exponent"]
    with np.errstate(divide="ignore", invalid="ignore"):
        time = np.where(exponent > 0, 1.0 / exponent, np.nan)
    return {"exponent": exponent, "stderr": run["stderr"], "lyapunov_time_steps": time,
            "diverged": run["diverged"], "fixed_point": fixed_point, "per_chain": run["per_chain"],
            "steps": int(steps), "transient": int(transient), "chains": int(z0.shape[1]), "method": METHOD}
