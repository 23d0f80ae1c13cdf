"""One variant, start to finish: compile, train every optimizer for every seed, generate, score.

This is what the workflow's ``train`` rule runs (``rnn.api.train`` runs it as the workflow does, from a
notebook); settings left out take the study's documented defaults (``rnn.settings``).
"""

import logging
import time
from types import SimpleNamespace

import numpy as np

from . import backends, metrics
from .compiled import Compiled
from .generation import start_points, truths, warmup_inputs
from .model import Draw, Spec, init_params
from .settings import TRAINING_KEYS, Longterm, check_generation, check_segments, defaults, variant_settings
from .train import OPTIMIZERS, check_optimizers, check_settings, train_all, warm_up

log = logging.getLogger(__name__)

CURVE_COLUMNS = ("optimizer", "phase", "seed", "step", "cost")


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


_DATA, _TOP = defaults("data"), defaults("top")


def run_variant(series, settings, seeds=(0,), optimizers=OPTIMIZERS, backend=_TOP["backend"], train=_DATA["train"],
                validation=_DATA["validation"], horizon=_TOP["horizon"], generation=None, lyapunov=float("nan"),
                longterm=None, log_every=_TOP["curve_every"], gradient="bptt"):
    """Train and score one variant for all seeds (stacked) and optimizers: set up, train, score.

    ``settings`` holds the Spec keys and the training keys (``rnn.settings.Training``); a key left out takes
    its documented default (``rnn.settings.BASELINE``, the study's). ``generation`` (a
    ``rnn.settings.Generation`` or its dict) places start points in the test segment after train +
    validation; each model is then scored on its continuations from all of them
    (``rnn.metrics.score_starts``); None skips that. ``longterm`` ({"settings", "reference" (L,),
    "embedding" {"lag", "dim"}}, needs ``generation``): long free runs from the first test start points,
    scored against the reference trajectory (``rnn.longterm``: d_stsp, d_h); None skips that.
    Returns a dict with ``rows`` (one metrics dict per optimizer x seed), ``curves`` (learning-curve
    rows), ``params`` {optimizer: stacked params}, ``y`` and ``continuation`` {optimizer: (n, K)},
    ``test`` {optimizer: (horizon, S, K)} continuations from the start points, and ``timing``
    (seconds per phase).
    """
    job = _set_up(series, settings, seeds, optimizers, backend, train, validation, horizon, generation, longterm,
                  log_every, gradient)
    runs = _train(job)
    t0 = time.perf_counter()
    out = _score(job, runs, lyapunov)
    job.timing["evaluate_seconds"] = time.perf_counter() - t0
    return {**out, "timing": job.timing, "spec": job.spec.to_dict()}


def _set_up(series, settings, seeds, optimizers, backend, train, validation, horizon, generation, longterm,
            log_every, gradient):
    """Check every argument (before any work), then compile every function training calls and call each once,
    so that compiling is not counted as training."""
    series = np.asarray(series, dtype=np.float64).reshape(-1, 1)
    full = variant_settings(settings, "settings")  # unknown keys refused by name, defaults filled in
    spec = Spec.from_dict(full)
    training = check_settings(log_every=log_every, **{k: full[k] for k in TRAINING_KEYS})
    backends.check(backend)
    check_segments(len(series), train, validation, horizon)
    if generation is not None:
        generation = check_generation(generation, train, validation, len(series))
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds!r}")
    check_optimizers(optimizers)
    if longterm is not None:
        from . import longterm as measures

        if generation is None:
            raise ValueError("longterm needs generation: its free runs start at the test start points")
        longterm = (measures.prepare(longterm["reference"], longterm["settings"], longterm["embedding"]),
                    Longterm.from_dict(longterm["settings"]).to_dict())
    restarts = int(training.pop("restarts"))
    draws = [Draw(s, r) for s in seeds for r in range(restarts)]  # every restart of every weight seed, stacked
    job = SimpleNamespace(series=series, spec=spec, training=training, restarts=restarts, draws=draws, seeds=seeds,
               optimizers=list(optimizers), train=train, validation=validation, horizon=horizon,
               generation=generation, longterm=longterm, log_every=log_every, timing={})

    t0 = time.perf_counter()
    job.compiled = Compiled(spec, len(draws), train, len(series), horizon, backend, gradient)
    job.start, job.monitor = init_params(spec, draws), _monitor(job)
    warm_up(job.compiled, series[:train], job.start, optimizers, log_every=log_every,
            **{k: training[k] for k in ("epochs", "rollout_schedule", "onestep_weight")})
    if any("sgd" in o for o in optimizers):
        job.monitor(job.start)
    job.timing["compile_seconds"] = time.perf_counter() - t0
    log.info("compiled %s for K=%d on %s in %.1f s", spec, len(draws), backend, job.timing["compile_seconds"])
    return job


def _monitor(job):
    """The one-step training and validation MSE of every stacked model, for SGD's learning curves."""
    x_seen = np.ascontiguousarray(job.series[:job.train + job.validation])
    end = job.train + job.validation

    def monitor(params):
        y = job.compiled.one_step(x_seen, params)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's error may overflow
            return {name: np.array([metrics.one_step_mse(y[:, k], job.series, a, b) for k in range(len(job.draws))])
                    for name, (a, b) in (("train_mse", (1, job.train)), ("val_mse", (job.train, end)))}
    return monitor


def _train(job):
    """Every optimizer on every stacked model: {optimizer: run} (``rnn.train.train_all``)."""
    t0 = time.perf_counter()
    runs = train_all(job.compiled, np.ascontiguousarray(job.series[:job.train]), job.draws, job.optimizers,
                     log_every=job.log_every, monitor=job.monitor, initial=job.start, **job.training)
    job.timing["train_seconds"] = time.perf_counter() - t0
    return runs


def _score_models(job, run, lyapunov):
    """Per stacked model of one optimizer: (scores, statuses, test continuations, valid times per start, long runs)."""
    compiled, series, gen = job.compiled, job.series, job.generation
    y, cont = compiled.generate(series, run["params"])
    test = vpt = long = None
    if gen is not None:
        start_scores, test, vpt = _generation_scores(compiled, series, run["params"], gen, job.train,
                                                     job.validation, lyapunov)
    if job.longterm is not None:
        long, long_scores = _long_runs(compiled, series, run["params"], gen, job.train, job.validation, job.longterm)
        own = _own_exponents(job, run["params"])
    scores, status = [], []
    for k in range(len(job.draws)):
        if run["diverged"][k]:
            row, st = metrics.nan_scores(job.horizon), "diverged"
            if gen is not None:
                row.update(metrics.nan_start_scores(gen["starts"]))
                vpt[:, k] = np.nan
            if job.longterm is not None:
                row.update(d_stsp=np.nan, d_h=np.nan, lyapunov_model=np.nan, lyapunov_model_stderr=np.nan)
        else:
            row = metrics.score(y[:, k], cont[:, k], series, job.train, job.validation, lyapunov)
            st = "ok" if np.all(np.isfinite(cont[:, k])) else "unstable"
            if gen is not None:
                row.update(start_scores[k])
            if job.longterm is not None:
                row.update(long_scores[k], lyapunov_model=own["exponent"][k], lyapunov_model_stderr=own["stderr"][k])
        scores.append(row)
        status.append(st)
    return y, cont, scores, status, test, vpt, long


EXPONENT_CHAINS = 4  # warm-ups (the first test start points') from which the model's own exponent is measured


def _own_exponents(job, params):
    """Each model's own largest Lyapunov exponent per sample (``rnn.exponents.rnn_exponent``): its closed
    loop run as long as the long free runs (``longterm.steps`` after ``longterm.discard``), from the warm-ups
    of the first test start points."""
    from .exponents import rnn_exponent

    settings = job.longterm[1]
    starts = starts_in_test(job.generation, job.train, job.validation)[:EXPONENT_CHAINS]
    warmup = warmup_inputs(job.series, starts, job.generation["warmup"])
    return rnn_exponent(params, job.spec, warmup, steps=settings["steps"], transient=settings["discard"])


def _score(job, runs, lyapunov):
    """Generate and score every model; keep each weight seed's restart chosen on validation; the result's
    rows, curves, parameters and continuations."""
    seeds, draws, restarts, gen = job.seeds, job.draws, job.restarts, job.generation
    rows, curves, ys, conts, tests, vpt_starts, longs, params = [], [], {}, {}, {}, {}, {}, {}
    for opt, run in runs.items():
        y, cont, scores, status, test, vpt, long = _score_models(job, run, lyapunov)
        # the restart kept for each weight seed, on the validation start points (all of them with one restart)
        kept = (choose_restarts(np.array([r.get("vpt_steps_val", np.nan) for r in scores]),
                                np.array([r.get("nrmse_val", np.nan) for r in scores]), restarts)
                if restarts > 1 and gen is not None else np.arange(0, len(draws), restarts))
        ys[opt], conts[opt] = y[:, kept], cont[:, kept]
        params[opt] = {n: v[kept] for n, v in run["params"].items()}
        if gen is not None:
            tests[opt], vpt_starts[opt] = test[..., kept], vpt[:, kept]
        if job.longterm is not None:
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
    out = {"rows": rows, "curves": curves, "params": params,
           "y": ys, "continuation": conts, "test": tests, "longterm": longs}
    if gen is not None:
        out.update(starts=starts_in_test(gen, job.train, job.validation), vpt_starts=vpt_starts)
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
