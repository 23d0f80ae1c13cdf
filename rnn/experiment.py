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
from .compiled import Compiled
from .generation import start_points, truths, warmup_inputs
from .model import Spec, init_params
from .train import OPTIMIZERS, TRAINING_KEYS, check_optimizers, check_settings, train_all

log = logging.getLogger(__name__)

GENERATION_KEYS = ("starts", "spacing", "warmup", "horizon")
CURVE_COLUMNS = ("optimizer", "phase", "seed", "step", "cost")


def check_generation(gen, train, validation, length):
    """Raise ValueError unless the test start points (``gen``: starts, spacing, warmup, horizon) fit
    in the test segment [train + validation, length): warm-ups and continuations included."""
    missing = [k for k in GENERATION_KEYS if k not in gen]
    if missing:
        raise ValueError(f"generation lacks {', '.join(missing)}; needs {', '.join(GENERATION_KEYS)}")
    for name in GENERATION_KEYS:
        value, least = gen[name], 0 if name == "warmup" else 1
        if isinstance(value, bool) or int(value) != value or value < least:
            raise ValueError(f"generation.{name} must be an integer >= {least}, got {value!r}")
    if gen["warmup"] > train:
        raise ValueError(f"generation.warmup ({gen['warmup']}) must be <= train ({train}): the validation "
                         "start points warm up in the training segment")
    need = gen["warmup"] + gen["spacing"] * (gen["starts"] - 1) + gen["horizon"]
    test = length - train - validation
    if need > test:
        raise ValueError(f"generation: warmup + spacing * (starts - 1) + horizon ({gen['warmup']} + "
                         f"{gen['spacing']} * {gen['starts'] - 1} + {gen['horizon']} = {need}) must be <= the "
                         f"test segment, length - train - validation ({test})")


def starts_in_test(gen, train, validation):
    """The test segment's start points: the first leaves room for its warm-up inside the segment."""
    return start_points(train + validation + gen["warmup"], gen["starts"], gen["spacing"])


def starts_in_validation(gen, train, validation):
    """Start points for choosing settings: every ``spacing`` samples through the first half of the
    validation segment (warm-ups in the training segment); each continuation is scored up to the
    segment's end only, so the test segment stays unseen and valid times are censored there."""
    return start_points(train, (validation // 2) // gen["spacing"] + 1, gen["spacing"])


def _generation_scores(compiled, series, params, gen, train, validation, lyapunov):
    """Per model: scores on the test start points (``rnn.metrics.score_starts``), the median valid
    time over the validation start points (``vpt_steps_val``), and the continuations (horizon, S, K)
    and valid times (S, K) of the test start points. One compiled call runs both sets of start points."""
    val, test = starts_in_validation(gen, train, validation), starts_in_test(gen, train, validation)
    x_warmup = warmup_inputs(series, np.concatenate([val, test]), gen["warmup"])
    horizon = max(gen["horizon"], validation)
    cont = compiled.generate_from(x_warmup, params, horizon)
    test_cont, test_truth = cont[:gen["horizon"], len(val):], truths(series, test, gen["horizon"])
    s, std = np.ravel(series), float(np.std(series))
    scores, K = [], cont.shape[2]
    vpt_test = np.empty((len(test), K))
    for k in range(K):
        vpt_test[:, k] = metrics.valid_times(test_cont[:, :, k], test_truth, std)
        row = metrics.score_starts(test_cont[:, :, k], test_truth, std, lyapunov)
        row["vpt_steps_val"] = float(np.median([
            metrics.valid_prediction_time(cont[:train + validation - a, j, k], s[a:train + validation], std)
            for j, a in enumerate(val)]))
        scores.append(row)
    return scores, test_cont, vpt_test


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
                validation=500, horizon=1000, generation=None, lyapunov=float("nan"), log_every=10,
                gradient="bptt"):
    """Train and score one variant for all seeds (stacked) and optimizers.

    ``settings`` holds the Spec keys and the TRAINING_KEYS (tutorial values by default, see
    ``rnn.study.BASELINE`` for the study's). ``generation`` (starts, spacing, warmup, horizon)
    places start points in the test segment after train + validation; each model is then scored
    on its continuations from all of them (``rnn.metrics.score_starts``); None skips that.
    Returns a dict with ``rows`` (one metrics dict per optimizer x seed), ``curves`` (learning-curve
    rows), ``params`` {optimizer: stacked params}, ``y`` and ``continuation`` {optimizer: (n, K)},
    ``test`` {optimizer: (horizon, S, K)} continuations from the start points, and ``timing``
    (seconds per phase).
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
    if generation is not None:
        check_generation(generation, train, validation, len(series))
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds!r}")
    check_optimizers(optimizers)

    timing = {}
    t0 = time.perf_counter()
    compiled = Compiled(spec, len(seeds), train, len(series), horizon, backend, gradient)
    x_train = np.ascontiguousarray(series[:train])
    start = init_params(spec, seeds)
    # first calls, cheap ones only: JIT for JAX and Numba (SGD's epochs graph and the start points'
    # graph compile on their first real use, so their compiling counts in training and evaluation)
    compiled.generate(series, start)
    if any(o not in ("sgd", "ridge") for o in optimizers):  # a quasi-Newton method: the loss graph
        compiled.loss_and_grad(x_train, start)
    if any(o.startswith("ridge") for o in optimizers):
        compiled.states(x_train, start)
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
    rows, curves, ys, conts, tests, vpt_starts = [], [], {}, {}, {}, {}
    for opt, run in runs.items():
        y, cont = compiled.generate(series, run["params"])
        ys[opt], conts[opt] = y, cont
        if generation is not None:
            start_scores, tests[opt], vpt_starts[opt] = _generation_scores(
                compiled, series, run["params"], generation, train, validation, lyapunov)
        for k, seed in enumerate(seeds):
            diverged = bool(run["diverged"][k])
            if diverged:
                scores, status = metrics.nan_scores(horizon), "diverged"
                if generation is not None:
                    scores.update(metrics.nan_start_scores(generation["starts"]))
                    vpt_starts[opt][:, k] = np.nan
            else:
                scores = metrics.score(y[:, k], cont[:, k], series, train, validation, lyapunov)
                status = "ok" if np.all(np.isfinite(cont[:, k])) else "unstable"
                if generation is not None:
                    scores.update(start_scores[k])
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
    out = {"rows": rows, "curves": curves, "params": {o: r["params"] for o, r in runs.items()},
           "y": ys, "continuation": conts, "test": tests, "timing": timing, "spec": spec.to_dict()}
    if generation is not None:
        out.update(starts=starts_in_test(generation, train, validation), vpt_starts=vpt_starts)
    return out


def save_outputs(out, seeds, metrics_path, curves_path, params_path, predictions_path):
    """Write a ``run_variant`` result atomically; the metrics table is written last."""
    import pandas as pd

    from . import io

    seeds = np.asarray(seeds)
    io.save_npz(params_path, seeds=seeds, **{f"{opt}/{n}": v for opt, p in out["params"].items() for n, v in p.items()})
    tests = {}
    if out["test"]:  # the first test start point's continuations, and every start point's valid time
        tests["starts"] = out["starts"]
        tests.update({f"start/{o}": c[:, 0, :] for o, c in out["test"].items()})
        tests.update({f"vpt_starts/{o}": v for o, v in out["vpt_starts"].items()})
    io.save_npz(predictions_path, seeds=seeds, **{f"y/{o}": v for o, v in out["y"].items()},
                **{f"continuation/{o}": v for o, v in out["continuation"].items()}, **tests)
    curves = pd.DataFrame(out["curves"])  # a ridge fit has no curve: keep the columns all the same
    io.save_csv(curves_path, curves.reindex(columns=list(dict.fromkeys([*CURVE_COLUMNS, *curves.columns]))))
    rows = pd.DataFrame(out["rows"])
    for key, value in out["timing"].items():
        rows[f"job_{key}"] = value
    io.save_csv(metrics_path, rows)
