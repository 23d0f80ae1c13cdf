"""The reservoir reference (an echo state network, Jaeger 2001): fixed random weights, a fitted read-out.

The input and recurrent weights keep their seeded initial values (``rnn.model.init_params``, with
w_hh rescaled to ``spectral_radius`` when set); only the read-out is fitted, in closed form, by
ridge regression of x_{t+1} on the teacher-forced hidden states h_t (and on x_t when ``skip``):

    [w_ho; b_o; w_xo] = argmin  sum_{t >= washout} (h_t w_ho + b_o + x_t w_xo - x_{t+1})^2
                                + ridge (|w_ho|^2 + |w_xo|^2)

The bias b_o is not penalised (centring the targets would do the same). Each model is one least-squares
problem, solved as such on the rows augmented by sqrt(ridge) times the identity (scipy.linalg.lstsq,
QR with column pivoting), not through the normal equations: those square the condition number of the
states, and a reservoir of hundreds of units with biases at a ridge of 1e-12 gives states so nearly
collinear that the normal equations return a read-out whose one-step error is the series' variance.
"""

import numpy as np
import scipy.linalg

from .settings import variant_settings


def check_ridge(ridge):
    """``ridge`` as a float, or ValueError naming it (the schema's range, ``rnn.settings``)."""
    return variant_settings({"ridge": ridge})["ridge"]


def fit_readout(states, x, washout, ridge, skip=False, inputs=None):
    """The read-out of K models from their teacher-forced states (T, K, H), targets the clean series x (T, 1);
    ``inputs`` (T, K or 1), what drove the states (x plus a model's input noise; default x), feed the
    skip term.

    Returns ({"w_ho": (K, H, 1), "b_o": (K, 1)[, "w_xo": (K, 1, 1)]}, ok (K,) bool); a model
    whose solve fails or gives non-finite weights has ok False (and NaN weights).
    """
    ridge = check_ridge(ridge)
    T, K, H = states.shape
    x = np.ravel(x)
    inputs = np.broadcast_to(np.asarray(x if inputs is None else inputs, dtype=float).reshape(T, -1), (T, K))
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
    penalised = np.flatnonzero(penalty)
    extra = np.zeros((len(penalised), len(penalty)))
    extra[np.arange(len(penalised)), penalised] = np.sqrt(ridge)
    b = np.concatenate([target, np.zeros(len(penalised))])
    for k in range(K):
        columns = [states[rows, k, :], np.ones((T - 1 - washout, 1))] + ([inputs[rows, k, None]] if skip else [])
        phi = np.concatenate(columns, axis=1)
        if not np.all(np.isfinite(phi)):
            continue
        try:
            w, _, rank, _ = scipy.linalg.lstsq(np.vstack([phi, extra]), b, lapack_driver="gelsy", check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            continue
        if rank < len(penalty) or not np.all(np.isfinite(w)):  # not a unique read-out (ridge 0, collinear states)
            continue
        ok[k] = True
        out["w_ho"][k, :, 0], out["b_o"][k, 0] = w[:H], w[H]
        if skip:
            out["w_xo"][k, 0, 0] = w[H + 1]
    return out, ok
