"""The tutorial's SimpleRNN, generalised, as PyTensor graphs built with ``scan``.

K models with the same architecture (one per weight seed) are stacked along a leading axis and
computed in one graph; nothing mixes the K slots, so slot k gives the numbers model k gives alone.

    hidden      h_t = f(u_t w_xh + b_h + h_{t-1} w_hh)          (T, K, H)
    prediction  y_t = h_t w_ho + b_o [+ u_t w_xo]               (T, K)   predicts x_{t+1}
    cost        mean_t (y_t - x_{t+1})^2 + l2 sum p^2 + l1 sum |p|   over all parameters

The input u_t is the data x_t when teacher-forced (plus seeded Gaussian noise of std
``input_noise`` in training, one draw per model), and the model's own previous output when it
free-runs (``free_run``). This module holds the one-step loss; ``rnn.rollout`` the closed-loop loss,
``rnn.generation`` the continuations, ``rnn.compiled`` the compiled functions.

The gradient is back-propagation through time written out as a second, backward ``scan`` that
carries only dz_t = dcost/d(pre-activation); the weight gradients are then single contractions
over time outside the loop. ``gradient="autodiff"`` uses ``pytensor.grad`` instead (same numbers,
about twice the work: its backward scan accumulates every weight gradient step by step).
"""


from dataclasses import asdict, dataclass

import numpy as np

from . import backends
from .settings import BASELINE, definition, variant_settings

pytensor, pt = backends.import_pytensor()

NONLINEARITIES = tuple(definition("setting_properties")["properties"]["nonlinearity"]["enum"])


def _activation(name, z):
    if name == "tanh":
        return pt.tanh(z)
    if name == "sigmoid":
        return pt.sigmoid(z)
    if name == "relu":
        return pt.maximum(z, 0.0)
    return z


def activation_slope(name, h):
    """f'(z) written in terms of h = f(z)."""
    if name == "tanh":
        return 1.0 - h**2
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "relu":
        return pt.cast(h > 0, "float64")
    return pt.ones_like(h)


# Spec fields that draw the initial weights (``init_params``) and nothing else: no graph reads them (``rnn.programs``)
INIT_FIELDS = ("init_scale_in", "init_scale_rec", "init_scale_out", "init_scale_bias", "spectral_radius")


@dataclass(frozen=True)
class Spec:
    """Architecture and regularisation of one variant; defaults are the study's (``rnn.settings.BASELINE``,
    from the schema), and every value is checked there (``ValueError`` naming the key)."""

    hidden: int = BASELINE["hidden"]
    nonlinearity: str = BASELINE["nonlinearity"]
    init_scale_in: float = BASELINE["init_scale_in"]  # std of w_xh
    init_scale_rec: float = BASELINE["init_scale_rec"]  # std of w_hh
    init_scale_out: float = BASELINE["init_scale_out"]  # std of w_ho
    init_scale_bias: float = BASELINE["init_scale_bias"]  # std of b_h (0: the tutorial's zero biases)
    skip: bool = BASELINE["skip"]  # direct input -> output weight w_xo
    weight_noise: float = BASELINE["weight_noise"]  # std of Gaussian noise added to the weights on each training pass
    l1: float = BASELINE["l1"]
    l2: float = BASELINE["l2"]
    spectral_radius: float | None = BASELINE["spectral_radius"]  # rescale each seed's initial w_hh to this radius
    input_noise: float = BASELINE["input_noise"]  # std of Gaussian noise on the teacher-forced inputs in training
    rollout_steps: int = BASELINE["rollout_steps"]  # closed-loop continuations of the training loss (1: one-step)
    rollout_stride: int = BASELINE["rollout_stride"]  # start them from every stride-th teacher-forced state
    rollout_coverage: int | None = BASELINE["rollout_coverage"]  # at horizon R, every max(stride, ceil(R / C))-th
    rollout_forcing: float = BASELINE["rollout_forcing"]  # closed loop's state mixed (1 - a) model + a teacher-forced
    rollout_forcing_interval: int | None = BASELINE["rollout_forcing_interval"]  # replaced by the teacher-forced one every n steps
    washout: int = BASELINE["washout"]  # teacher-forced steps before the first rollout start or ridge-fit row

    def __post_init__(self):
        checked = variant_settings(asdict(self))  # the schema's types and ranges, named; numbers typed
        for name in self.__dataclass_fields__:
            object.__setattr__(self, name, checked[name])

    @classmethod
    def from_dict(cls, settings):
        """Build a Spec from a dict that may hold other (training) keys too."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in settings.items() if k in known})

    def to_dict(self):
        return asdict(self)

    @property
    def param_shapes(self):
        """Per-model shapes of the parameters, in the tutorial's names and order."""
        H = int(self.hidden)
        shapes = {"w_xh": (1, H), "w_hh": (H, H), "b_h": (H,), "w_ho": (H, 1), "b_o": (1,)}
        if self.skip:
            shapes["w_xo"] = (1, 1)
        return shapes

    @property
    def noisy(self):
        """Names of the parameters that get weight noise (the weight matrices, not the biases)."""
        return tuple(n for n in self.param_shapes if n.startswith("w_"))


class Draw(tuple):
    """A weight seed and one of its restarts, (seed, restart); it prints as the seed, with the restart if > 0."""

    def __new__(cls, seed, restart=0):
        return super().__new__(cls, (int(seed), int(restart)))

    def __str__(self):
        return str(self[0]) if self[1] == 0 else f"{self[0]} (restart {self[1]})"


def seed_sequence(seed, stream):
    """The entropy of one model's random stream ``stream`` (0: initial weights, 1: weight noise, 2: input
    noise): [seed, stream] for a weight seed, [seed, stream, r] for its restart r > 0 given as (seed, r)."""
    seed, restart = (seed if isinstance(seed, tuple) else (seed, 0))
    return [int(seed), int(stream)] + ([int(restart)] if restart else [])


def init_params(spec, seeds):
    """Stacked initial parameters for one model per seed: dict name -> (K, *shape) float64.

    A seed is a weight seed or a (seed, restart) pair (``seed_sequence``; restart 0 is the seed itself).
    Model k draws w_xh, w_hh, w_ho (in that order) from ``default_rng(seed_sequence(seed_k, 0))``, then b_h when
    ``init_scale_bias`` > 0 (a reservoir's random biases); other biases and w_xo start at zero, so the
    skip variant starts from the baseline's weights. With
    ``spec.spectral_radius`` set, each model's w_hh is then scaled to that spectral radius (the
    largest |eigenvalue|), as an echo state network's reservoir.
    """
    scales = {"w_xh": spec.init_scale_in, "w_hh": spec.init_scale_rec, "w_ho": spec.init_scale_out}
    per_model = []
    for seed in seeds:
        rng = np.random.default_rng(seed_sequence(seed, 0))
        p = {}
        for name, shape in spec.param_shapes.items():
            if name in scales:
                p[name] = rng.normal(0.0, scales[name], shape)
            else:
                p[name] = np.zeros(shape)
        if spec.init_scale_bias > 0:
            p["b_h"] = rng.normal(0.0, spec.init_scale_bias, p["b_h"].shape)
        if spec.spectral_radius is not None:
            p["w_hh"] *= spec.spectral_radius / np.max(np.abs(np.linalg.eigvals(p["w_hh"])))
        per_model.append(p)
    return {name: np.stack([p[name] for p in per_model]) for name in spec.param_shapes}


def symbolic_params(spec, K, prefix=""):
    return {n: pt.tensor(prefix + n, shape=(K, *s), dtype="float64") for n, s in spec.param_shapes.items()}


def matvec(h, w):
    """Row vectors times each model's matrix: (K, H) or (K, B, H) x (K, H, H') -> (K, H') or (K, B, H').

    Models lead, so that a batch of states (start points side by side) is one batched matrix product
    over K (XLA's dot emitter) with nothing to transpose inside a loop. With XLA's small-loop
    threshold raised (``rnn.backends``) the batched dot beats broadcast-multiply-and-sum at every
    size: per epoch at the tutorial's size 1.17x -> 1.02x the hand-written reference for one model,
    0.91x -> 0.66x per model with 8 stacked (``python -m rnn.benchmark``, the same machine, one core).
    """
    if h.ndim == 3:
        return pt.einsum("kbi,kij->kbj", h, w)
    return pt.einsum("ki,kij->kj", h, w)


def hidden_step(spec, pre_t, h_prev, w_hh):
    return _activation(spec.nonlinearity, pre_t + matvec(h_prev, w_hh))


def _input_drive(u, p):
    """u w_xh + b_h for inputs u (..., K or 1): (..., K, H)."""
    return u[..., None] * p["w_xh"][:, 0, :] + p["b_h"]


def _batched_drive(u, p):
    """u w_xh + b_h for B inputs per model, u (..., K or 1, B): (..., K, B, H)."""
    return u[..., None] * p["w_xh"] + p["b_h"][:, None, :]


def hidden_states(spec, u, p):
    """Teacher-forced hidden states from h = 0: over inputs u (T, K or 1) -> (T, K, H), or over B
    sequences side by side (e.g. the warm-ups of several start points), u (T, K or 1, B) -> (T, K, B, H)."""
    K, H = p["w_hh"].type.shape[0], int(spec.hidden)
    batched = u.ndim == 3
    drive = _batched_drive(u, p) if batched else _input_drive(u, p)
    shape = (K, u.type.shape[2], H) if batched else (K, H)
    return pytensor.scan(lambda pre_t, h_prev, w_hh: hidden_step(spec, pre_t, h_prev, w_hh),
                         sequences=[drive], outputs_info=[pt.zeros(shape, dtype="float64")],
                         non_sequences=[p["w_hh"]], strict=True, return_updates=False)


def predictions(spec, u, h, p):
    """Predictions (..., K) from hidden states (..., K, H) and the inputs u (..., K) or (..., 1) that made them."""
    y = (h * p["w_ho"][:, :, 0]).sum(axis=-1) + p["b_o"][:, 0]
    if spec.skip:
        y = y + u * p["w_xo"][:, 0, 0]
    return y


def batched_predictions(spec, u, h, p):
    """Predictions (..., K, B) from B states per model (..., K, B, H) and the inputs u (..., K or 1, B) that made them."""
    y = (h * p["w_ho"][:, None, :, 0]).sum(axis=-1) + p["b_o"]
    if spec.skip:
        y = y + u * p["w_xo"][:, 0]
    return y


def free_run(spec, p, y0, h0, n_steps, states=False):
    """The closed loop: from B states per model h0 (K, B, H) and their predictions y0 (K, B), feed each
    prediction back as the next input; returns the ``n_steps`` further predictions (n_steps, K, B)
    (and their states (n_steps, K, B, H) with ``states``)."""
    def step(y_prev, h_prev, *weights):
        q = dict(zip(p, weights))
        h_t = hidden_step(spec, _batched_drive(y_prev, q), h_prev, q["w_hh"])
        return batched_predictions(spec, y_prev, h_t, q), h_t

    ys, hs = pytensor.scan(step, outputs_info=[y0, h0], non_sequences=list(p.values()), n_steps=n_steps,
                           strict=True, return_updates=False)
    return (ys, hs) if states else ys


PENALTIES = ("l1", "l2")  # the penalty's coefficients, inputs of every training graph (``symbolic_penalty``)


def symbolic_penalty():
    """The training graphs' penalty coefficients {"l1", "l2"}: scalar inputs, not constants, so that one
    compiled loss serves every value (a study's L1 and L2 ablations, the everyday loop's new value)."""
    return {name: pt.scalar(name, dtype="float64") for name in PENALTIES}


def _coefficients(spec, coefficients):
    """{"l1", "l2"}: ``coefficients`` (symbolic or numbers), else the spec's values."""
    return coefficients if coefficients is not None else {"l1": spec.l1, "l2": spec.l2}


def _applies(c):
    """Whether a penalty term enters: always for a symbolic coefficient (0 then adds exactly 0), else if non-zero."""
    return not isinstance(c, (int, float)) or c != 0


def penalty(spec, p, coefficients=None):
    """l2 sum p^2 + l1 sum |p| over every parameter, per model: (K,). Symbolic or NumPy params; the
    coefficients are ``coefficients`` {"l1", "l2"} (``symbolic_penalty``), else the spec's."""
    c = _coefficients(spec, coefficients)
    total = 0.0
    for v in p.values():
        flat = v.reshape((v.shape[0], -1))
        if _applies(c["l2"]):
            total = total + c["l2"] * (flat**2).sum(axis=1)
        if _applies(c["l1"]):
            total = total + c["l1"] * abs(flat).sum(axis=1)
    return total


def backprop_states(spec, u, h, g_h, w_hh):
    """Back-propagation through the teacher-forced recurrence, by hand: from dL/dh_t given directly
    at every step, g_h (T, K, H), the gradients of w_xh, w_hh and b_h (u: the inputs fed, h_{-1} = 0).

    A backward ``scan`` carries only dz_t = dL/d(pre-activation at t); the weight gradients are then
    single contractions over time outside the loop.
    """
    K, H = w_hh.type.shape[0], int(spec.hidden)

    def back(g_h_t, h_t, dz_next, w_hh_t):
        return (g_h_t + matvec(dz_next, w_hh_t)) * activation_slope(spec.nonlinearity, h_t)

    dz = pytensor.scan(back, sequences=[g_h[::-1], h[::-1]],
                       outputs_info=[pt.zeros((K, H), dtype="float64")],
                       non_sequences=[w_hh.transpose(0, 2, 1)],
                       strict=True, return_updates=False)[::-1]  # (T, K, H)
    h_prev = pt.concatenate([pt.zeros((1, K, H), dtype="float64"), h[:-1]], axis=0)
    return {"w_xh": (u[:, :, None] * dz).sum(axis=0)[:, None, :],
            "w_hh": pt.einsum("tki,tkj->kij", h_prev, dz),
            "b_h": dz.sum(axis=0)}


def _bptt(spec, u, h, err, p):
    """Gradient of the one-step mean squared error w.r.t. each parameter, by hand-written BPTT."""
    T = u.type.shape[0]
    K = p["w_hh"].type.shape[0]
    g_y = pt.concatenate([2.0 * err / (T - 1), pt.zeros((1, K), dtype="float64")], axis=0)  # (T, K)
    grads = backprop_states(spec, u, h, g_y[:, :, None] * p["w_ho"][None, :, :, 0], p["w_hh"])
    grads["w_ho"] = (h * g_y[:, :, None]).sum(axis=0)[:, :, None]
    grads["b_o"] = g_y.sum(axis=0)[:, None]
    if spec.skip:
        grads["w_xo"] = (u * g_y).sum(axis=0)[:, None, None]
    return grads


GRADIENTS = ("bptt", "autodiff")


def check_gradient(gradient):
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be 'bptt' or 'autodiff', got {gradient!r}")
    return gradient


def symbolic_noise(spec, K, T):
    """The loss graph's noise inputs: weight noise per weight matrix and input noise "x" (T, K) on the
    teacher-forced inputs. Every training graph has them, zero where a spec has no noise (adding 0 changes
    no bit), so that one compiled loss serves every noise level."""
    noise = {n: v for n, v in symbolic_params(spec, K, "noise_").items() if n in spec.noisy}
    noise["x"] = pt.tensor("noise_x", shape=(T, K), dtype="float64")
    return noise


def noise_shapes(spec, K, T):
    """Shapes of the noise inputs of ``symbolic_noise``, in its order."""
    return {n: v.type.shape for n, v in symbolic_noise(spec, K, T).items()}


def perturbed(p, x, noise):
    """(params with weight noise added, inputs u = x + input noise): what the network is fed."""
    p_eff = {n: v + noise[n] if n in noise else v for n, v in p.items()}
    return p_eff, (x + noise["x"] if "x" in noise else x)


def add_penalty_gradient(spec, grads, p, coefficients=None):
    """grads + the gradient of ``penalty(spec, p, coefficients)``."""
    c = _coefficients(spec, coefficients)
    for n, v in p.items():
        if _applies(c["l2"]):
            grads[n] = grads[n] + 2.0 * c["l2"] * v
        if _applies(c["l1"]):
            grads[n] = grads[n] + c["l1"] * pt.sign(v)
    return grads


def loss_terms(spec, x, p, noise, gradient="bptt", coefficients=None):
    """(mse (K,), {name: grad of mse + penalty}) of the one-step loss, for symbolic x (T, 1), params,
    noise (``symbolic_noise``) and penalty ``coefficients`` (``symbolic_penalty``; None: the spec's
    values as constants); the targets are the clean x_{t+1}."""
    T = x.type.shape[0]
    p_eff, u = perturbed(p, x, noise)
    h = hidden_states(spec, u, p_eff)
    err = predictions(spec, u, h, p_eff)[:-1] - x[1:]  # (T-1, K)
    mse = (err**2).mean(axis=0)
    if gradient == "autodiff":
        return mse, dict(zip(p, pt.grad((mse + penalty(spec, p, coefficients)).sum(), list(p.values()))))
    return mse, add_penalty_gradient(spec, _bptt(spec, u, h, err, p_eff), p, coefficients)


def loss_graph(spec, K, T, gradient="bptt"):
    """Symbolic inputs and outputs of the one-step training loss for K stacked models on a (T, 1) series.

    Returns (inputs, outputs) with inputs [x, *params, *noise, l1, l2] (``symbolic_noise``,
    ``symbolic_penalty``) and outputs [mse (K,), *grads of the cost] (``loss_terms``). The cost is
    mse + ``penalty(spec, params)``;
    ``rnn.compiled.Compiled`` adds the penalty in NumPy, row by row, so that a model's cost is
    bitwise the same however many models are stacked (a backend may sum a stacked penalty in
    another order, and BFGS's line search amplifies one ulp).
    """
    check_gradient(gradient)
    x = pt.tensor("x", shape=(T, 1), dtype="float64")
    p = symbolic_params(spec, K)
    noise, coefficients = symbolic_noise(spec, K, T), symbolic_penalty()
    mse, grads = loss_terms(spec, x, p, noise, gradient, coefficients)
    return [x, *p.values(), *noise.values(), *coefficients.values()], [mse, *(grads[n] for n in p)]
