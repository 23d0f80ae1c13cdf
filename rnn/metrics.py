"""Scores of one-step predictions and of free-running continuations (plain NumPy).

Conventions: ``series`` is the (L,) or (L, 1) data; ``y`` the teacher-forced predictions with
y[t] predicting series[t+1]; ``continuation`` the closed-loop output whose first value predicts
series[train]. Errors are normalised by the standard deviation of the whole series.
"""

import numpy as np

NRMSE_STEPS = (1, 84, 200, 500, 1000)
VPT_THRESHOLD = 0.5


def one_step_mse(y, series, start, stop):
    """Mean squared error of the predictions of series[start:stop], each made one step before."""
    y, series = np.ravel(y), np.ravel(series)
    if not 1 <= start < stop <= len(series):
        raise ValueError(f"need 1 <= start < stop <= {len(series)}, got start={start}, stop={stop}")
    return float(np.mean((y[start - 1:stop - 1] - series[start:stop]) ** 2))


def nrmse(continuation, truth, steps, std):
    """Root mean squared error over the first ``steps`` values, divided by ``std``."""
    c, t = np.ravel(continuation)[:steps], np.ravel(truth)[:steps]
    return float(np.sqrt(np.mean((c - t) ** 2)) / std)


def valid_prediction_time(continuation, truth, std, threshold=VPT_THRESHOLD):
    """Steps before |error| / std first exceeds ``threshold`` (or turns non-finite).

    A continuation that stays within the threshold for its whole length scores its length
    (the measurement is censored there).
    """
    err = np.abs(np.ravel(continuation) - np.ravel(truth)) / std
    over = np.flatnonzero(~(err <= threshold))  # NaN counts as over
    return int(over[0]) if over.size else int(err.size)


def spectral_error(continuation, truth):
    """Total-variation distance between the normalised power spectra of continuation and truth.

    Each signal has its mean removed, is multiplied by a Hann window, and its periodogram
    |rfft|^2 is divided by its sum; the score is 0.5 * sum |p - q|, in [0, 1]: 0 when the two
    share their spectral shape, 1 when their power lies at disjoint frequencies. A continuation
    with no power left (collapsed to a constant) or non-finite values scores 1.
    """
    c, t = np.ravel(continuation).astype(float), np.ravel(truth).astype(float)
    if not np.all(np.isfinite(c)):
        return 1.0
    window = np.hanning(len(c))

    def spectrum(v):
        if np.ptp(v) <= 1e-12 * max(np.abs(v).max(), 1e-300):  # constant up to rounding
            return None
        power = np.abs(np.fft.rfft((v - v.mean()) * window)) ** 2
        return power / power.sum()

    p, q = spectrum(c), spectrum(t)
    if p is None or q is None:
        return 1.0
    return float(0.5 * np.abs(p - q).sum())


def score(y, continuation, series, train, validation, lyapunov=float("nan"), steps=NRMSE_STEPS):
    """All metrics of one model as a flat dict (see module docstring for conventions)."""
    series = np.ravel(series)
    horizon = len(np.ravel(continuation))
    truth = series[train:train + horizon]
    std = float(series.std())
    out = {
        "train_mse": one_step_mse(y, series, 1, train),
        "val_mse": one_step_mse(y, series, train, train + validation),
    }
    finite = np.all(np.isfinite(continuation))
    for h in steps:
        if h <= horizon:
            out[f"nrmse_{h}"] = nrmse(continuation, truth, h, std) if finite else float("nan")
    vpt = valid_prediction_time(continuation, truth, std)
    out["vpt_steps"] = vpt
    out["vpt_lyapunov"] = vpt * lyapunov
    out["spectral_error"] = spectral_error(continuation, truth)
    return out


def nan_scores(horizon, steps=NRMSE_STEPS):
    """The metric keys of ``score`` with NaN values, for runs that diverged."""
    keys = ["train_mse", "val_mse"] + [f"nrmse_{h}" for h in steps if h <= horizon]
    return {k: float("nan") for k in keys + ["vpt_steps", "vpt_lyapunov", "spectral_error"]}


TEST_NRMSE_STEPS = 84  # Jaeger's (2001) step


def valid_times(continuations, truths, std):
    """The valid prediction time (steps) of each of S continuations, (horizon, S) -> (S,)."""
    continuations, truths = np.asarray(continuations), np.asarray(truths)
    if continuations.shape != truths.shape or continuations.ndim != 2:
        raise ValueError(f"continuations {continuations.shape} and truths {truths.shape} must both be (horizon, S)")
    return np.array([valid_prediction_time(continuations[:, s], truths[:, s], std)
                     for s in range(continuations.shape[1])])


def nrmse_at(continuations, truths, std, step=TEST_NRMSE_STEPS):
    """Jaeger's (2001) yardstick on S continuations (horizon, S): the error *at* free-running step ``step``
    (row step - 1: row 0 is the first free-running prediction), root-mean-squared over the start points and
    divided by ``std``; NaN if any of them overflowed, or if the continuations are shorter than ``step``."""
    continuations, truths = np.asarray(continuations), np.asarray(truths)
    if continuations.shape[0] < step:
        return float("nan")
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.sqrt(np.mean((continuations[step - 1] - truths[step - 1]) ** 2)) / std)
    return value if np.isfinite(value) else float("nan")


def score_starts(continuations, truths, std, lyapunov=float("nan"), suffix="test"):
    """Scores of one model's continuations from many start points: (horizon, S) each.

    ``vpt_steps_<suffix>``: the median over start points of the valid prediction time (a single
    start point is a noisy estimate: the same model may keep 16 or 470 steps depending on where it
    starts); ``vpt_lyapunov_<suffix>``: the same in Lyapunov times; ``censored_<suffix>``: the fraction
    of start points still valid at the horizon, whose valid time is a lower bound (when it reaches one
    half, so is the median); ``nrmse_first84_<suffix>``: the mean over start points of the RMS error
    over the first 84 free-running steps (NaN where a continuation overflowed); ``nrmse_at84_<suffix>``:
    Jaeger's NRMSE84, the error at step 84 root-mean-squared over the start points (``nrmse_at``);
    ``n_starts``.
    """
    vpt = valid_times(continuations, truths, std)
    n, horizon = len(vpt), continuations.shape[0]
    steps = min(TEST_NRMSE_STEPS, horizon)
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.sqrt(np.mean((continuations[:steps] - truths[:steps]) ** 2, axis=0)) / std
    median = float(np.median(vpt))
    return {f"vpt_steps_{suffix}": median, f"vpt_lyapunov_{suffix}": median * lyapunov,
            f"censored_{suffix}": float(np.mean(vpt >= horizon)), f"nrmse_first84_{suffix}": float(np.mean(err)),
            f"nrmse_at84_{suffix}": nrmse_at(continuations, truths, std), "n_starts": n}


def nan_start_scores(n_starts, suffix="test"):
    """The keys of ``score_starts`` with NaN values (and the number of start points), for diverged runs."""
    return {f"vpt_steps_{suffix}": float("nan"), f"vpt_lyapunov_{suffix}": float("nan"),
            f"censored_{suffix}": float("nan"), f"nrmse_first84_{suffix}": float("nan"),
            f"nrmse_at84_{suffix}": float("nan"), "n_starts": int(n_starts), "vpt_steps_val": float("nan"),
            "nrmse_val": float("nan")}
