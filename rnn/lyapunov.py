"""The largest Lyapunov exponent of a series generator, measured on its own integrator.

Method (Benettin et al. 1980, the "two nearby trajectories" estimate): a reference trajectory and
a copy displaced by ``d0`` in the generator's full state advance one sample at a time with the
generator's own integrator; after every sample the distance d between them is measured, log(d / d0)
is added up, and the copy is pulled back to distance d0 along the direction it has drifted to. The
exponent per sample is the mean of log(d / d0) after a transient; ``chains`` independent pairs (from
different seeded initial histories) give the mean and its standard error.

The full state is what the integrator carries: for Mackey-Glass the delay buffer of ``tau * 10``
Euler sub-steps plus x (a delay equation's state is its whole history window), for Lorenz (x, y, z).
The series the study sees is tanh(x - 1) or x / 20 of that state, a smooth one-to-one read-out, which
has the same exponent. Everything is deterministic: the seeds are fixed.
"""

import numpy as np

from .data import GENERATORS, MACKEY_GLASS_SUB_STEPS, lorenz_step, mackey_glass_rate

METHOD = ("two nearby trajectories of the generator's own integrator (Benettin et al. 1980): "
          "mean log growth of a displacement renormalised to d0 after every sample")


def _mackey_glass_system(tau, chains, seed):
    """Initial states (chains, tau*10 + 1) and an ``advance(states)`` of one sample (10 Euler sub-steps)."""
    lag = int(tau) * MACKEY_GLASS_SUB_STEPS
    rng = np.random.default_rng([seed, 0])
    states = np.concatenate([1.2 + 0.2 * (rng.random((chains, lag)) - 0.5), np.full((chains, 1), 1.2)], axis=1)
    pointer = [0]  # the buffer is a ring: column pointer holds x(t - tau), shared by every row

    def advance(s):
        for _ in range(MACKEY_GLASS_SUB_STEPS):
            i = pointer[0]
            x_tau, x = s[:, i].copy(), s[:, lag]
            s[:, i] = x
            s[:, lag] = x + mackey_glass_rate(x, x_tau) / MACKEY_GLASS_SUB_STEPS
            pointer[0] = (i + 1) % lag
        return s

    return states, advance


def _lorenz_system(chains, seed, every=5):
    rng = np.random.default_rng([seed, 0])
    states = np.array([0.0, -0.01, 9.0]) + rng.normal(0.0, 0.01, (chains, 3))

    def advance(s):
        x, y, z = s.T
        for _ in range(every):
            x, y, z = lorenz_step(x, y, z)
        return np.stack([x, y, z], axis=1)

    return states, advance


def largest_exponent(generator="mackey_glass", tau=17, samples=20000, transient=1000, chains=8, d0=1e-8, seed=0):
    """Largest Lyapunov exponent per sample of a generator of ``rnn.data`` (its default settings).

    Returns a dict: ``lyapunov_per_sample`` (mean over chains), ``stderr``, ``lyapunov_time_steps``
    (1 / exponent), ``per_chain``, the settings and ``method``. ``mso`` is quasi-periodic (no
    positive exponent): its exponent is NaN.
    """
    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(GENERATORS)}; got {generator!r}")
    for name, value in (("samples", samples), ("chains", chains), ("tau", tau)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if chains < 2:
        raise ValueError(f"chains must be >= 2 for a standard error, got {chains}")
    out = {"generator": generator, "samples": int(samples), "transient": int(transient), "chains": int(chains),
           "d0": float(d0), "method": METHOD}
    if generator == "mackey_glass":
        out["tau"] = int(tau)
    if generator == "mso":
        return {**out, "lyapunov_per_sample": float("nan"), "stderr": float("nan"),
                "lyapunov_time_steps": float("nan"), "per_chain": [],
                "method": "quasi-periodic (two incommensurable sines): no positive exponent"}
    if generator == "mackey_glass":
        states, advance = _mackey_glass_system(tau, chains, seed)
    else:
        states, advance = _lorenz_system(chains, seed)
    for _ in range(transient):  # onto the attractor first
        states = advance(states)
    direction = np.random.default_rng([seed, 1]).normal(size=states.shape)
    both = np.concatenate([states, states + d0 * direction / np.linalg.norm(direction, axis=1, keepdims=True)])
    growth = np.zeros(chains)
    for _ in range(samples):
        both = advance(both)
        delta = both[chains:] - both[:chains]
        d = np.linalg.norm(delta, axis=1)
        growth += np.log(d / d0)
        both[chains:] = both[:chains] + delta * (d0 / d)[:, None]
    per_chain = growth / samples
    mean = float(per_chain.mean())
    return {**out, "lyapunov_per_sample": mean, "stderr": float(per_chain.std(ddof=1) / np.sqrt(chains)),
            "lyapunov_time_steps": 1.0 / mean if mean > 0 else float("nan"), "per_chain": per_chain.tolist()}


def exponent_record(generator, tau, given=None):
    """What the ``lyapunov`` rule writes: the exponent ``given`` in the config (``data.lyapunov``), or
    the generator's, measured (``largest_exponent``)."""
    if given is not None:
        return {"generator": generator, "lyapunov_per_sample": float(given), "lyapunov_time_steps": 1 / given,
                "method": "given in the config (data.lyapunov)"}
    return largest_exponent(generator, tau=tau)
