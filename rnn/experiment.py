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
from .model import Draw, Spec, init_params
from .train import OPTIMIZERS, TRAINING_KEYS, check_optimizers, check_settings, train_all, warm_up

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
    """Per model: scores on the test start points (``rnn.metrics.score_starts``); on the validation start
    points the median valid time (``vpt_steps_val``, censored at the segment's end) and, to tell apart
    models that all reach that end, the mean NRMSE over the steps every one of them has
    (``nrmse_val``: the first train + validation - last start, 250 by default); the continuations
    (horizon, S, K) and valid times (S, K) of the test start points. One compiled call runs both sets
    of start points."""
    val, test = starts_in_validation(gen, train, validation), starts_in_test(gen, train, validation)
    x_warmup = warmup_inputs(series, np.concatenate([val, test]), gen["warmup"])
    horizon = max(gen["horizon"], validation)
    cont = compiled.generate_from(x_warmup, params, horizon)
    test_cont, test_truth = cont[:gen["horizon"], len(val):], truths(series, test, gen["horizon"])
    s, std = np.ravel(series), float(np.std(series))
    scores, K = [], cont.shape[2]
    scored = train + validation - val.max()  # validation steps every validation start point has
    val_truth = truths(series, val, scored)
    vpt_test = np.empty((len(test), K))
    for k in range(K):
        vpt_test[:, k] = metrics.valid_times(test_cont[:, :, k], test_truth, std)
        row = metrics.score_starts(test_cont[:, :, k], test_truth, std, lyapunov)
        row["vpt_steps_val"] = float(np.median([
            metrics.valid_prediction_time(cont[:train + validation - a, j, k], s[a:train + validation], std)
            for j, a in enumerate(val)]))
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing continuation: NaN, as NRMSE@84
            row["nrmse_val"] = float(np.mean(np.sqrt(np.mean((cont[:scored, :len(val), k] - val_truth) ** 2, axis=0)))
                                     / std)
        scores.append(row)
    return scores, test_cont, vpt_test


def choose_restarts(vpt_val, nrmse_val, restarts):
    """For each weight seed, the index of the restart to keep among its ``restarts`` consecutive models:
    the longest median valid time on the validation start points ``vpt_val`` (K * restarts,), ties
    (e.g. all reaching the segment's end) broken by the lower validation NRMSE ``nrmse_val``, then the
    earlier restart; a diverged restart (NaN) is kept only if all of that seed's diverged. Validation
    only: the test segment plays no part."""
    vpt = np.where(np.isfinite(vpt_val), vpt_val, -np.inf).reshape(-1, restarts)
    mse = np.where(np.isfinite(nrmse_val), nrmse_val, np.inf).reshape(-1, restarts)
    order = np.lexsort((np.arange(restarts)[None, :].repeat(len(vpt), 0), mse, -vpt), axis=1)
    return np.arange(len(vpt)) * restarts + order[:, 0]


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


def _long_runs(compiled, series, params, gen, train, validation, longterm):
    """Long free runs (discard + steps, S, K) from the first ``longterm.starts`` test start points, and each
    model's mean scores over them (``rnn.longterm.Reference.score``: d_stsp, d_h)."""
    reference, settings = longterm
    starts = starts_in_test(gen, train, validation)[:settings["starts"]]
    runs = compiled.generate_from(warmup_inputs(series, starts, gen["warmup"]), params,
                                  settings["discard"] + settings["steps"])
    scores = []
    for k in range(runs.shape[2]):
        per_start = [reference.score(runs[:, j, k]) for j in range(runs.shape[1])]
        scores.append({key: float(np.mean([s[key] for s in per_start])) for key in per_start[0]})
    return runs, scores


def run_variant(series, settings, seeds=(0,), optimizers=OPTIMIZERS, backend="jax", train=1500,
                validation=500, horizon=1000, generation=None, lyapunov=float("nan"), longterm=None,
                log_every=10, gradient="bptt"):
    """Train and score one variant for all seeds (stacked) and optimizers.

    ``settings`` holds the Spec keys and the TRAINING_KEYS (tutorial values by default, see
    ``rnn.study.BASELINE`` for the study's). ``generation`` (starts, spacing, warmup, horizon)
    places start points in the test segment after train + validation; each model is then scored
    on its continuations from all of them (``rnn.metrics.score_starts``); None skips that.
    ``longterm`` ({"settings", "reference" (L,), "embedding" {"lag", "dim"}}, needs ``generation``): long
    free runs from the first test start points, scored against the reference trajectory
    (``rnn.longterm``: d_stsp, d_h); None skips that.
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
    if longterm is not None:
        from . import longterm as measures

        if generation is None:
            raise ValueError("longterm needs generation: its free runs start at the test start points")
        longterm = (measures.prepare(longterm["reference"], longterm["settings"], longterm["embedding"]),
                    measures.check_settings(longterm["settings"]))

    restarts = int(training.pop("restarts", 1))
    draws = [Draw(s, r) for s in seeds for r in range(restarts)]  # every restart of every weight seed, stacked

    timing = {}
    t0 = time.perf_counter()
    compiled = Compiled(spec, len(draws), train, len(series), horizon, backend, gradient)
    x_train = np.ascontiguousarray(series[:train])
    start = init_params(spec, draws)
    x_seen = np.ascontiguousarray(series[:train + validation])

    def monitor(params):
        y = compiled.one_step(x_seen, params)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's error may overflow
            return {
                "train_mse": np.array([metrics.one_step_mse(y[:, k], series, 1, train) for k in range(len(draws))]),
                "val_mse": np.array([metrics.one_step_mse(y[:, k], series, train, train + validation)
                                     for k in range(len(draws))]),
            }

    # every function training calls, called once now: its compiling is not training
    warm_up(compiled, x_train, start, optimizers, log_every=log_every,
            **{k: training[k] for k in ("epochs", "rollout_schedule", "onestep_weight") if k in training})
    if any("sgd" in o for o in optimizers):
        monitor(start)
    timing["compile_seconds"] = time.perf_counter() - t0
    log.info("compiled %s for K=%d on %s in %.1f s", spec, len(draws), backend, timing["compile_seconds"])

    t0 = time.perf_counter()
    runs = train_all(compiled, x_train, draws, list(optimizers), log_every=log_every, monitor=monitor,
                     initial=start, **training)
    timing["train_seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows, curves, ys, conts, tests, vpt_starts, longs, params = [], [], {}, {}, {}, {}, {}, {}
    for opt, run in runs.items():
        y, cont = compiled.generate(series, run["params"])
        scores, status = [], []
        if generation is not None:
            start_scores, test, vpt = _generation_scores(compiled, series, run["params"], generation, train,
                                                         validation, lyapunov)
        if longterm is not None:
            long, long_scores = _long_runs(compiled, series, run["params"], generation, train, validation, longterm)
        for k in range(len(draws)):
            if run["diverged"][k]:
                row, st = metrics.nan_scores(horizon), "diverged"
                if generation is not None:
                    row.update(metrics.nan_start_scores(generation["starts"]))
                    vpt[:, k] = np.nan
                if longterm is not None:
                    row.update(d_stsp=np.nan, d_h=np.nan)
            else:
                row = metrics.score(y[:, k], cont[:, k], series, train, validation, lyapunov)
                st = "ok" if np.all(np.isfinite(cont[:, k])) else "unstable"
                if generation is not None:
                    row.update(start_scores[k])
                if longterm is not None:
                    row.update(long_scores[k])
            scores.append(row)
            status.append(st)
        # the restart kept for each weight seed, on the validation start points (all of them with one restart)
        kept = (choose_restarts(np.array([r.get("vpt_steps_val", np.nan) for r in scores]),
                                np.array([r.get("nrmse_val", np.nan) for r in scores]), restarts)
                if restarts > 1 and generation is not None else np.arange(0, len(draws), restarts))
        ys[opt], conts[opt] = y[:, kept], cont[:, kept]
        params[opt] = {n: v[kept] for n, v in run["params"].items()}
        if generation is not None:
            tests[opt], vpt_starts[opt] = test[..., kept], vpt[:, kept]
        if longterm is not None:
            longs[opt] = long[..., kept]
        infos = run.get("bfgs", [{}] * len(draws))
        for seed, k in zip(seeds, kept):
            info = infos[k]
            rows.append({"optimizer": opt, "seed": seed, "restart": draws[k][1], "status": status[k], **scores[k],
                         "train_seconds": run["seconds"] * restarts,  # every restart's training, for one seed
                         "bfgs_iterations": info.get("iterations", np.nan),
                         "bfgs_evaluations": info.get("evaluations", np.nan),
                         "bfgs_message": info.get("message", "")})
        chosen = {draws[k]: seed for seed, k in zip(seeds, kept)}
        curves += [{"optimizer": opt, "phase": "sgd", "step": r["epoch"], **r, "seed": chosen[r["seed"]]}
                   for r in run.get("curve", []) if r["seed"] in chosen]
        for seed, k in zip(seeds, kept):
            curves += [{"optimizer": opt, "phase": "bfgs", "seed": seed, "step": i + 1, "cost": c}
                       for i, c in enumerate(infos[k].get("curve", []))]
    timing["evaluate_seconds"] = time.perf_counter() - t0
    out = {"rows": rows, "curves": curves, "params": params,
           "y": ys, "continuation": conts, "test": tests, "longterm": longs, "timing": timing, "spec": spec.to_dict()}
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
    tests.update({f"longterm/{o}": r[:, 0, :] for o, r in out.get("longterm", {}).items()})  # the first start's
    io.save_npz(predictions_path, seeds=seeds, **{f"y/{o}": v for o, v in out["y"].items()},
                **{f"continuation/{o}": v for o, v in out["continuation"].items()}, **tests)
    curves = pd.DataFrame(out["curves"])  # a ridge fit has no curve: keep the columns all the same
    io.save_csv(curves_path, curves.reindex(columns=list(dict.fromkeys([*CURVE_COLUMNS, *curves.columns]))))
    rows = pd.DataFrame(out["rows"])
    for key, value in out["timing"].items():
        rows[f"job_{key}"] = value
    io.save_csv(metrics_path, rows)
