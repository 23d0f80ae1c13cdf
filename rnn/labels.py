"""One table of human labels, units and ranges: every figure, table and caption names a metric through it.

``METRICS[column] = Metric(label, unit, low, high, log)``: ``label (unit)`` is an axis label, ``[low, high]``
the values the metric can take (an interval drawn for it stays inside), ``log`` whether its axis is
logarithmic. ``AXES`` names each ablated setting, ``OPTIMIZERS`` each optimizer, ``CONTENDERS`` the
generation question's three recipes.
"""

from typing import NamedTuple

import numpy as np


class Metric(NamedTuple):
    label: str
    unit: str = ""
    low: float = 0.0
    high: float = np.inf
    log: bool = False


METRICS = {
    "train_mse": Metric("one-step training error", "MSE", 0.0, np.inf, True),
    "val_mse": Metric("one-step validation error", "MSE", 0.0, np.inf, True),
    "nrmse_84": Metric("error over the first 84 free-running steps", "NRMSE"),
    "nrmse_first84_test": Metric("error over the first 84 free-running test steps", "NRMSE"),
    "nrmse_at84_test": Metric("error at free-running test step 84 (Jaeger's NRMSE84)", "NRMSE"),
    "censored_test": Metric("test start points still valid at the horizon", "fraction", 0.0, 1.0),
    "vpt_steps": Metric("valid time after the training segment", "steps"),
    "vpt_lyapunov": Metric("valid time after the training segment", "Lyapunov times"),
    "vpt_steps_val": Metric("valid time on validation start points", "steps"),
    "vpt_steps_test": Metric("valid time", "steps"),
    "vpt_lyapunov_test": Metric("valid time", "Lyapunov times"),
    "d_stsp": Metric("state-space divergence D_stsp", "nats", 0.0, np.inf, True),
    "d_h": Metric("spectral distance D_H", "Hellinger, 0 to 1", 0.0, 1.0),
    "lyapunov_model": Metric("model's largest Lyapunov exponent", "per step", -np.inf, np.inf),
    "train_seconds": Metric("training time per model", "s"),
}

AXES = {  # the ablated settings: the tutorial's "Things to try" and the generation recipe's knobs
    "hidden": "hidden units",
    "nonlinearity": "non-linearity",
    "init_scale_in": "initial input-weight scale",
    "init_scale_rec": "initial recurrent-weight scale",
    "init_scale_out": "initial output-weight scale",
    "init_scale_bias": "initial bias scale",
    "skip": "direct input→output connection",
    "weight_noise": "weight noise (std)",
    "l1": "L1 penalty",
    "l2": "L2 penalty",
    "input_noise": "input noise (std)",
    "rollout_steps": "closed-loop training horizon (steps)",
    "onestep_weight": "share of the budget on the one-step loss",
    "bfgs_maxiter": "quasi-Newton iterations",
    "rollout_forcing": "generalized teacher forcing α",
    "rollout_forcing_interval": "sparse teacher forcing every (steps)",
    "restarts": "initialisations per seed (best on validation kept)",
    "spectral_radius": "spectral radius",
    "lr": "learning rate",
}

OPTIMIZERS = {"sgd": "gradient descent", "bfgs": "BFGS", "sgd+bfgs": "gradient descent, then BFGS",
              "lbfgs": "L-BFGS", "sgd+lbfgs": "gradient descent, then L-BFGS", "ridge": "ridge read-out",
              "ridge+bfgs": "ridge, then BFGS", "ridge+lbfgs": "ridge, then L-BFGS"}

RNN_MAX_HIDDEN = 60  # the generation question's "small RNN"
CONTENDERS = {"tutorial": "the tutorial's recipe", "rnn": f"best RNN (≤ {RNN_MAX_HIDDEN} units)",
              "reservoir": "reservoir (echo state network)"}

FLOOR = "floor: two true trajectories"
CEILINGS = {"constant": "a constant", "sine": "a pure sine", "noise": "white noise"}

STATISTIC = "median"  # what every figure's marker is; its interval: a bootstrap percentile 95% CI
BOOTSTRAP = {"resamples": 2000, "seed": 0}


def axis_label(column):
    """'valid time (Lyapunov times)' for 'vpt_lyapunov_test'; a KeyError names a column without a label."""
    m = METRICS[column]
    return f"{m.label} ({m.unit})" if m.unit else m.label


def setting(axis):
    return AXES.get(axis, axis.replace("_", " "))


def optimizer(name):
    return OPTIMIZERS.get(name, name)


def raw_names():
    """Column and key names that must never reach a reader as text (tests check figures against them)."""
    return set(METRICS) | {a for a in AXES if "_" in a} | {"vpt steps test", "d stsp", "d h", "val mse",
                                                           "n_diverged", "vpt_steps_test_mean"}


def bootstrap_median(values, resamples=BOOTSTRAP["resamples"], seed=BOOTSTRAP["seed"], level=0.95):
    """(median, low, high): the median of ``values`` and its percentile bootstrap interval (explicit seed).
    The interval's ends are medians of resamples, so they stay inside the values' own range."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(v, size=(resamples, len(v)), replace=True), axis=1)
    a = (1 - level) / 2
    return float(np.median(v)), float(np.quantile(medians, a)), float(np.quantile(medians, 1 - a))


def bootstrap_difference(a, b, resamples=BOOTSTRAP["resamples"], seed=BOOTSTRAP["seed"], level=0.95):
    """(difference, low, high): median(b) - median(a) and its percentile bootstrap 95% interval, each group
    resampled on its own (explicit seed)."""
    a, b = (np.asarray(x, dtype=float) for x in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    da = np.median(rng.choice(a, size=(resamples, len(a))), axis=1)
    db = np.median(rng.choice(b, size=(resamples, len(b))), axis=1)
    d = db - da
    q = (1 - level) / 2
    return float(np.median(b) - np.median(a)), float(np.quantile(d, q)), float(np.quantile(d, 1 - q))
