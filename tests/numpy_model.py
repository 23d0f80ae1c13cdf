"""A NumPy transcription of the model (one slot at a time), independent of the PyTensor graphs,
shared by the unit tests (imported as ``from numpy_model import ...``: tests/ is on sys.path)."""

import numpy as np


def np_activation(name, z):
    return {"tanh": np.tanh, "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
            "relu": lambda v: np.maximum(v, 0.0), "linear": lambda v: v}[name](z)


def np_step(spec, x_t, h_prev, q):
    """One step of the RNN for one model: (hidden (H,), prediction) from input x_t and h_{t-1}."""
    h = np_activation(spec.nonlinearity, x_t * q["w_xh"][0] + q["b_h"] + h_prev @ q["w_hh"])
    y = h @ q["w_ho"][:, 0] + q["b_o"][0]
    if spec.skip:
        y = y + x_t * q["w_xo"][0, 0]
    return h, y


def np_teacher_forced(spec, x, q):
    """Hidden states (T, H) and predictions (T,) over a (T, 1) series for one model's params q."""
    h = np.zeros(spec.hidden)
    hs, ys = [], []
    for x_t in x[:, 0]:
        h, y = np_step(spec, x_t, h, q)
        hs.append(h)
        ys.append(y)
    return np.array(hs), np.array(ys)


def np_cost(spec, x, q, noise=None):
    """(cost, mse) of one model: MSE at the noisy weights, penalties on the clean ones."""
    q_eff = {n: v + noise[n] if noise and n in noise else v for n, v in q.items()}
    _, y = np_teacher_forced(spec, x, q_eff)
    mse = np.mean((y[:-1] - x[1:, 0]) ** 2)
    pen = sum(spec.l2 * np.sum(v**2) + spec.l1 * np.sum(np.abs(v)) for v in q.values())
    return mse + pen, mse


def slot(params, k):
    return {n: v[k] for n, v in params.items()}


def random_params(spec, K, seed, scale=0.5):
    """Parameters of a size that makes every term of the gradient matter (biases non-zero too)."""
    rng = np.random.default_rng(seed)
    return {n: rng.normal(0.0, scale, (K, *s)) for n, s in spec.param_shapes.items()}


def random_noise(spec, K, seed):
    rng = np.random.default_rng(seed)
    return {n: rng.normal(0.0, 0.3, (K, *spec.param_shapes[n])) for n in spec.noisy}


def rel_err(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))




def np_free_run(spec, q, y, h, n_steps):
    """``n_steps`` closed-loop predictions of one model from state h and its prediction y."""
    out = []
    for _ in range(n_steps):
        h, y = np_step(spec, y, h, q)
        out.append(y)
    return np.array(out)
