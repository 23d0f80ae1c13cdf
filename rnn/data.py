"""Series generators: Mackey-Glass (the tutorial's), MSO and Lorenz, each seeded, each returning
a list of ``n_samples`` float64 arrays of shape ``(sample_len, 1)``.

None of them touches NumPy's global random state: each draws from its own ``RandomState`` /
``Generator`` built from ``seed``.
"""

from collections import deque

import numpy as np

GENERATORS = ("mackey_glass", "mso", "lorenz")

MACKEY_GLASS_SUB_STEPS = 10  # Euler sub-steps of 0.1 per sample (one sample per time unit)


def _check_length(sample_len, n_samples):
    if int(sample_len) != sample_len or sample_len < 1:
        raise ValueError(f"sample_len must be a positive integer, got {sample_len!r}")
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")


def mackey_glass_rate(x, x_tau):
    """dx/dt of Mackey-Glass (beta 0.2, gamma 0.1, n 10) for floats or arrays."""
    return 0.2 * x_tau / (1.0 + x_tau**10) - 0.1 * x


def lorenz_step(x, y, z, sigma=10.0, rho=28.0, beta=8.0 / 3.0, step=0.01):
    """One forward-Euler step of Lorenz-63, for floats or arrays."""
    return (x + sigma * (y - x) * step, y + (x * (rho - z) - y) * step, z + (x * y - beta * z) * step)


def mackey_glass(sample_len=1000, tau=17, seed=None, n_samples=1):
    """Mackey-Glass series, number for number the tutorial's ``synthetic.mackey_glass``.

    dx/dt = 0.2 x(t-tau) / (1 + x(t-tau)^10) - 0.1 x(t), forward Euler with 10 sub-steps of 0.1 per
    sample; a FIFO of tau*10 past values starts at 1.2 + 0.2 (u - 0.5) with u from the legacy Mersenne
    Twister seeded with ``seed``; x starts at 1.2 once and carries over between samples, each sample
    draws a fresh history. Returns ``n_samples`` arrays tanh(x - 1) of shape (sample_len, 1).
    """
    _check_length(sample_len, n_samples)
    if int(tau) != tau or tau < 1:
        raise ValueError(f"tau must be a positive integer, got {tau!r}")
    sub_steps = MACKEY_GLASS_SUB_STEPS
    history_len = int(tau) * sub_steps
    rng = np.random.RandomState(seed)
    x = 1.2
    samples = []
    for _ in range(n_samples):
        history = deque(1.2 * np.ones(history_len) + 0.2 * (rng.rand(history_len) - 0.5))
        out = np.zeros((sample_len, 1))
        for t in range(sample_len):
            for _ in range(sub_steps):
                x_tau = history.popleft()
                history.append(x)
                x = x + mackey_glass_rate(x, x_tau) / sub_steps
            out[t] = x
        samples.append(np.tanh(out - 1))
    return samples


def mso(sample_len=1000, seed=None, n_samples=1):
    """Multiple sine oscillator: 0.5 (sin(0.2 t + phi) + sin(0.311 t + phi)), phi ~ U[0, 2 pi) from ``seed``.

    The two frequencies are incommensurable, so the sum never repeats exactly; the factor 0.5 keeps
    it within [-1, 1]. Returns ``n_samples`` arrays of shape (sample_len, 1).
    """
    _check_length(sample_len, n_samples)
    rng = np.random.default_rng(seed)
    t = np.arange(sample_len, dtype=np.float64)[:, None]
    samples = []
    for _ in range(n_samples):
        phase = rng.uniform(0.0, 2 * np.pi)
        samples.append(0.5 * (np.sin(0.2 * t + phase) + np.sin(0.311 * t + phase)))
    return samples


def lorenz(sample_len=1000, seed=None, n_samples=1, sigma=10.0, rho=28.0, beta=8.0 / 3.0,
           step=0.01, every=5, burn_in=1000):
    """Lorenz-63 x-coordinate / 20, forward Euler with ``step``, one sample every ``every`` steps.

    Starts from (0, -0.01, 9) (Sprott's initial condition, as the tutorial) plus N(0, 0.01) from
    ``seed``, discards ``burn_in`` samples, and carries the state over between samples.
    Returns ``n_samples`` arrays of shape (sample_len, 1), roughly within [-1, 1].
    """
    _check_length(sample_len, n_samples)
    rng = np.random.default_rng(seed)
    state = np.array([0.0, -0.01, 9.0]) + rng.normal(0.0, 0.01, 3)
    x, y, z = state

    def advance(n_out):
        nonlocal x, y, z
        out = np.empty(n_out)
        for t in range(n_out):
            for _ in range(every):
                x, y, z = lorenz_step(x, y, z, sigma, rho, beta, step)
            out[t] = x
        return out

    advance(burn_in)
    return [(advance(sample_len) / 20.0)[:, None] for _ in range(n_samples)]


def generate(generator="mackey_glass", length=2500, tau=17, seed=0):
    """One series of ``length`` samples from a generator named in ``GENERATORS``, shape (length, 1)."""
    if generator == "mackey_glass":
        return mackey_glass(length, tau=tau, seed=seed)[0]
    if generator == "mso":
        return mso(length, seed=seed)[0]
    if generator == "lorenz":
        return lorenz(length, seed=seed)[0]
    raise ValueError(f"generator must be one of {', '.join(GENERATORS)}; got {generator!r}")
