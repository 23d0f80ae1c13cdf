"""The reservoir reference (an echo state network, Jaeger 2001): fixed random weights, a fitted read-out.

The input and recurrent weights keep their seeded initial values (``rnn.model.init_params``, with
w_hh rescaled to ``spectral_radius`` when set); only the read-out is fitted, in closed form, by
ridge regression of x_{t+1} on the teacher-forced hidden states h_t (and on x_t when ``skip``):

    [w_ho; b_o; w_xo] = argmin  sum_{t >= washout} (h_t w_ho + b_o + x_t w_xo - x_{t+1})^2
                                + ridge (|w_ho|^2 + |w_xo|^2)

The bias b_o is not penalised (centring the targets would do the same). Each model is one small
symmetric positive-definite solve (scipy.linalg.solve), (H + 1 [+ 1])^2 unknowns.
"""

import numpy as np
import scipy.linalg


def check_ridge(ridge):
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    return float(ridge)


def fit_readout(states, x, washout, ridge, skip=False):
    """The read-out of K models from their teacher-forced states (T, K, H) over the inputs x (T, 1).

    Returns ({"w_ho": (K, H, 1), "b_o": (K, 1)[, "w_xo": (K, 1, 1)]}, ok (K,) bool); a model
    whose solve fails or gives non-finite weights has ok False (and NaN weights).
    """
    ridge = check_ridge(ridge)
    T, K, H = states.shape
    x = np.ravel(x)
    if not 0 <= washout < T - 1:
        raise ValueError(f"washout ({washout}) must leave at least one training pair in {T} samples")
    rows = slice(washout, T - 1)
    target = x[washout + 1:T]
    penalty = np.ones(H + 1 + bool(skip))
    penalty[H] = 0.0  # the bias
    out = {"w_ho": np.full((K, H, 1), np.nan), "b_o": np.full((K, 1), np.nan)}
    if skip:
        out["w_xo"] = np.full((K, 1, 1), np.nan)
    ok = np.zeros(K, dtype=bool)
    for k in range(K):
        columns = [states[rows, k, :], np.ones((T - 1 - washout, 1))] + ([x[rows, None]] if skip else [])
        phi = np.concatenate(columns, axis=1)
        try:
            w = scipy.linalg.solve(phi.T @ phi + ridge * np.diag(penalty), phi.T @ target, assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            continue
        if not np.all(np.isfinite(w)):
            continue
        ok[k] = True
        out["w_ho"][k, :, 0], out["b_o"][k, 0] = w[:H], w[H]
        if skip:
            out["w_xo"][k, 0, 0] = w[H + 1]
    return out, ok
