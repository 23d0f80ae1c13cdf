"""Closed-loop generation: the tutorial's continuation after the training segment, and continuations
from many start points (the held-out test segment's), each as a PyTensor graph for K stacked models.

A continuation feeds each prediction back as the next input (``rnn.model.free_run``); its first value
is the prediction of the sample right after the last teacher-forced one. Start points are chosen
and their truths cut by ``start_points`` and ``warmup_inputs`` (plain NumPy).
"""

import numpy as np

from . import backends
from .model import batched_predictions, free_run, hidden_states, predictions, symbolic_params

pytensor, pt = backends.import_pytensor()


def continuation_graph(spec, K, length, train, horizon):
    """Teacher-forced predictions over a (length, 1) series and the tutorial's continuation.

    Outputs [y (length, K), continuation (horizon, K)]: y_t predicts x_{t+1}; the continuation
    starts with y_{train-1} (the prediction of x_train made after teacher-forcing x_0..x_{train-1})
    and feeds each output back as the next input.
    """
    x = pt.tensor("x", shape=(length, 1), dtype="float64")
    p = symbolic_params(spec, K)
    h = hidden_states(spec, x, p)
    y = predictions(spec, x, h, p)
    y0 = y[train - 1]
    continuation = y0[None]
    if horizon > 1:
        rest = free_run(spec, p, y0[:, None], h[train - 1][:, None, :], horizon - 1)[:, :, 0]
        continuation = pt.concatenate([continuation, rest], axis=0)
    return [x, *p.values()], [y, continuation]


def one_step_graph(spec, K, length):
    """Input [x (length, 1), *params]; output y (length, K), the teacher-forced predictions (y_t predicts x_{t+1})."""
    x = pt.tensor("x", shape=(length, 1), dtype="float64")
    p = symbolic_params(spec, K)
    return [x, *p.values()], [predictions(spec, x, hidden_states(spec, x, p), p)]


def starts_graph(spec, K, n_starts, warmup, horizon):
    """Continuations from ``n_starts`` start points at once, each after its own warm-up.

    Input [x_warmup (warmup, S), *params]: column s holds the ``warmup`` samples before start s,
    teacher-forced from h = 0; output continuation (horizon, S, K), whose row 0 predicts the sample
    at the start point.
    """
    xw = pt.tensor("x_warmup", shape=(warmup, n_starts), dtype="float64")
    p = symbolic_params(spec, K)
    u = xw[:, None, :]  # (warmup, 1, S): the S warm-ups side by side, the same for every model
    h = hidden_states(spec, u, p)[-1]  # (K, S, H)
    y0 = batched_predictions(spec, u[-1], h, p)  # (K, S)
    continuation = y0[None]
    if horizon > 1:
        continuation = pt.concatenate([continuation, free_run(spec, p, y0, h, horizon - 1)], axis=0)
    return [xw, *p.values()], [continuation.transpose(0, 2, 1)]


def start_points(first, n_starts, spacing):
    """Indices of the start points: first, first + spacing, ... (n_starts of them)."""
    return int(first) + int(spacing) * np.arange(int(n_starts))


def warmup_inputs(series, starts, warmup):
    """(warmup, S): the ``warmup`` samples before each start point, oldest first."""
    s = np.ravel(series)
    starts = np.asarray(starts)
    if starts.min() < warmup:
        raise ValueError(f"a start point at {starts.min()} leaves no room for a warm-up of {warmup} samples")
    return np.ascontiguousarray(np.stack([s[a - warmup:a] for a in starts], axis=1))


def truths(series, starts, horizon):
    """(horizon, S): what each continuation should have been."""
    s = np.ravel(series)
    if np.max(starts) + horizon > len(s):
        raise ValueError(f"start {np.max(starts)} + horizon {horizon} runs past the series ({len(s)} samples)")
    return np.stack([s[a:a + horizon] for a in starts], axis=1)
