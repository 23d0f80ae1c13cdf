"""One variant, start to finish: compile, train every optimizer for every seed, generate, score.

This is what the workflow's ``train`` rule runs; it is as usable from a notebook::

    from rnn.data import generate
    from rnn.experiment import run_variant
    out = run_variant(generate("mackey_glass", 2500), {"hidden": 15}, seeds=[0, 1, 2])
"""

import logging
import time

import numpy as np

from . import backends, metrics
from .model import Compiled, Spec, init_params
from .train import OPTIMIZERS, check_optimizers, check_settings, train_all

log = logging.getLogger(__name__)

TRAINING_KEYS = ("lr", "epochs", "bfgs_maxiter", "bfgs_gtol")


def check_segments(length, train, validation, horizon):
    """Raise ValueError naming the segment that does not fit in a series of ``length`` samples."""
    for name, value in (("train", train), ("validation", validation), ("horizon", horizon)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if train < 2:
        raise ValueError(f"train must be >= 2 to have one prediction target, got {train}")
    if train + validation > length:
        raise ValueError(f"train + validation ({train} + {validation}) must be <= the series length {length}")
    if horizon > length - train:
        raise ValueError(f"horizon ({horizon}) must be <= series length - train ({length} - {train})")


def run_variant(series, settings, seeds=(0,), optimizers=OPTIMIZERS, backend="jax", train=1500,
                validation=500, horizon=1000, lyapunov=float("nan"), log_every=10, gradient="bptt"):
    """Train and score one variant for all seeds (stacked) and optimizers.

    ``settings`` holds the Spec keys and lr, epochs, bfgs_maxiter, bfgs_gtol (tutorial values by
    default, see ``rnn.study.BASELINE`` for the study's).
    Returns a dict with ``rows`` (one metrics dict per optimizer x seed), ``curves`` (learning-curve
    rows), ``params`` {optimizer: stacked params}, ``y`` and ``continuation`` {optimizer: (n, K)},
    and ``timing`` (seconds per phase).
    """
    series = np.asarray(series, dtype=np.float64).reshape(-1, 1)
    unknown = sorted(set(settings) - set(Spec.__dataclass_fields__) - set(TRAINING_KEYS))
    if unknown:
        allowed = ", ".join([*Spec.__dataclass_fields__, *TRAINING_KEYS])
        raise ValueError(f"unknown settings {', '.join(unknown)}; allowed: {allowed}")
    spec = Spec.from_dict(settings)
    training = {k: settings[k] for k in TRAINING_KEYS if k in settings}
    check_settings(**training, log_every=log_every)
    backends.check(backend)
    check_segments(len(series), train, validation, horizon)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds!r}")
    check_optimizers(optimizers)

    timing = {}
    t0 = time.perf_counter()
    compiled = Compiled(spec, len(seeds), train, len(series), horizon, backend, gradient)
    x_train = np.ascontiguousarray(series[:train])
    start = init_params(spec, seeds)
    compiled.generate(series, start)  # first calls: JIT for JAX and Numba
    compiled.loss_and_grad(x_train, start)
    timing["compile_seconds"] = time.perf_counter() - t0
    log.info("compiled %s for K=%d on %s in %.1f s", spec, len(seeds), backend, timing["compile_seconds"])

    def monitor(params):
        y, _ = compiled.generate(series, params)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's error may overflow
            return {
                "train_mse": np.array([metrics.one_step_mse(y[:, k], series, 1, train) for k in range(len(seeds))]),
                "val_mse": np.array([metrics.one_step_mse(y[:, k], series, train, train + validation)
                                     for k in range(len(seeds))]),
            }

    t0 = time.perf_counter()
    runs = train_all(compiled, x_train, seeds, list(optimizers), log_every=log_every, monitor=monitor,
                     initial=start, **training)
    timing["train_seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows, curves, ys, conts = [], [], {}, {}
    for opt, run in runs.items():
        y, cont = compiled.generate(series, run["params"])
        ys[opt], conts[opt] = y, cont
        for k, seed in enumerate(seeds):
            diverged = bool(run["diverged"][k])
            if diverged:
                scores, status = metrics.nan_scores(horizon), "diverged"
            else:
                scores = metrics.score(y[:, k], cont[:, k], series, train, validation, lyapunov)
                status = "ok" if np.all(np.isfinite(cont[:, k])) else "unstable"
            info = run.get("bfgs", [{}] * len(seeds))[k]
            rows.append({"optimizer": opt, "seed": seed, "status": status, **scores,
                         "train_seconds": run["seconds"],
                         "bfgs_iterations": info.get("iterations", np.nan),
                         "bfgs_evaluations": info.get("evaluations", np.nan),
                         "bfgs_message": info.get("message", "")})
        curves += [{"optimizer": opt, "phase": "sgd", "step": r["epoch"], **r} for r in run.get("curve", [])]
        for k, info in enumerate(run.get("bfgs", [])):
            curves += [{"optimizer": opt, "phase": "bfgs", "seed": seeds[k], "step": i + 1, "cost": c}
                       for i, c in enumerate(info.get("curve", []))]
    timing["evaluate_seconds"] = time.perf_counter() - t0
    return {"rows": rows, "curves": curves, "params": {o: r["params"] for o, r in runs.items()},
            "y": ys, "continuation": conts, "timing": timing, "spec": spec.to_dict()}


def save_outputs(out, seeds, metrics_path, curves_path, params_path, predictions_path):
    """Write a ``run_variant`` result atomically; the metrics table is written last."""
    import pandas as pd

    from . import io

    seeds = np.asarray(seeds)
    io.save_npz(params_path, seeds=seeds, **{f"{opt}/{n}": v for opt, p in out["params"].items() for n, v in p.items()})
    io.save_npz(predictions_path, seeds=seeds, **{f"y/{o}": v for o, v in out["y"].items()},
                **{f"continuation/{o}": v for o, v in out["continuation"].items()})
    io.save_csv(curves_path, pd.DataFrame(out["curves"]))
    rows = pd.DataFrame(out["rows"])
    for key, value in out["timing"].items():
        rows[f"job_{key}"] = value
    io.save_csv(metrics_path, rows)


def load_predictions(path):
    """{"seeds", "y": {optimizer: (L, K)}, "continuation": {optimizer: (horizon, K)}} from predictions.npz."""
    from . import io

    arrays = io.load_npz(path, ["seeds"])
    out = {"seeds": arrays["seeds"], "y": {}, "continuation": {}}
    for key, value in arrays.items():
        if "/" in key:
            kind, opt = key.split("/", 1)
            out.setdefault(kind, {})[opt] = value
    if not out["y"] or out["y"].keys() != out["continuation"].keys():
        raise io.BadFileError(path, "should hold y/<optimizer> and continuation/<optimizer> for each optimizer")
    return out
