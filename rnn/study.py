"""The study's tables: per-run metrics -> ``runs.csv``, ``ablation.csv`` and ``ablation.md``, and the
validation rankings the findings and verify read. Plain pandas and NumPy (no PyTensor).

The config layer (schema, defaults, variants) is ``rnn.settings``.
"""

import math

import numpy as np

from .labels import AXES, METRICS as METRIC_LABELS
from .settings import BASELINE, NAMED_AXIS, format_value  # noqa: F401  (the tables' columns and variant names)

METRICS = ("train_mse", "val_mse", "nrmse_1", "nrmse_84", "nrmse_200", "nrmse_500", "nrmse_1000",
           "vpt_steps", "vpt_lyapunov", "spectral_error", "vpt_steps_val", "nrmse_val", "vpt_steps_test", "vpt_lyapunov_test",
           "censored_test", "nrmse_first84_test", "nrmse_at84_test", "d_stsp", "d_h", "lyapunov_model")
STATUSES = {
    "ok": "trained, and its free-running continuation stayed finite",
    "unstable": "trained (one-step metrics valid), but the continuation overflowed; continuation metrics NaN",
    "diverged": "the training cost became NaN or inf or passed 1e6 times its initial value; the model "
                "was frozen there and all its metrics are NaN",
}


def run_rows(metrics, name, meta, data_seed, backend):
    """One training job's metrics (a frame: one row per optimizer x seed) as rows of ``runs.csv``: the
    variant's name, base, axis, value, series and backend, then its full settings, then the metrics."""
    return ordered_runs(metrics.assign(variant=name, base=meta["base"], axis=meta["axis"], value=meta["value"],
                                       data_seed=data_seed, backend=backend, **meta["settings"]))


def ordered_runs(runs):
    """``runs.csv``'s columns in order: what ran (name, series, optimizer, seed, settings), then the metrics."""
    first = ["variant", "base", "axis", "value", "data_seed", "optimizer", "seed", "backend", "status", *BASELINE]
    return runs[first + [c for c in runs.columns if c not in first]]


# --- tables -------------------------------------------------------------------------------------

def ci95(values):
    """Half-width of the 95% confidence interval of the mean (Student's t); NaN below two values."""
    n = len(values)
    if n < 2:
        return float("nan")
    from scipy.special import stdtrit  # Student's t quantile, what scipy.stats.t.ppf calls: the same bits, without
    # importing scipy.stats (half a second of every table and figure job)

    return float(stdtrit(n - 1, 0.975) * np.std(values, ddof=1) / math.sqrt(n))


POOLED = "all"  # ablation.csv's data_seed of the rows that pool every series a variant ran on


def ablation_table(runs, metrics=METRICS):
    """Per series (``data_seed``) and pooled over all series (``data_seed`` "all"), per variant x optimizer:
    n runs, counts per status, and n/mean/median/std/ci95 of each metric.

    Diverged runs are counted, never averaged; for continuation metrics only finite values count.
    """
    import pandas as pd

    runs = runs.assign(**{k: v for k, v in (("data_seed", 0), ("base", "baseline")) if k not in runs})
    metrics = [m for m in metrics if m in runs.columns]
    keys = ["data_seed", "variant", "base", "axis", "value", "optimizer"]
    runs = runs.assign(series=runs["data_seed"])
    both = pd.concat([runs.assign(data_seed=runs["data_seed"].astype(str)), runs.assign(data_seed=POOLED)])
    rows = []
    for key, group in both.groupby(keys, sort=False, dropna=False):  # a baseline's value read back from CSV is NaN
        row = dict(zip(keys, key))
        row["n"] = len(group)
        row["n_series"] = group["series"].nunique()
        for status in STATUSES:
            row[f"n_{status}"] = int((group["status"] == status).sum())
        kept = group[group["status"] != "diverged"]
        for m in metrics:
            values = kept[m].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            row[f"{m}_n"] = len(values)
            row[f"{m}_mean"] = float(values.mean()) if len(values) else float("nan")
            row[f"{m}_median"] = float(np.median(values)) if len(values) else float("nan")
            row[f"{m}_min"] = float(values.min()) if len(values) else float("nan")
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            row[f"{m}_ci95"] = ci95(values)
        rows.append(row)
    return pd.DataFrame(rows)


def pooled(table):
    """The rows of an ablation table that pool every series (one per variant x optimizer)."""
    if "data_seed" not in table:
        return table
    return table[table["data_seed"].astype(str) == POOLED]


def comparable(runs, base="baseline"):
    """``base`` and the variants around it (``runs``' ``base`` column), each pooled over the series that all
    of them ran on, so that every comparison with the base is on the same series: (ablation-table rows,
    sorted data seeds). The default study asks the "Things to try" on series 0 and runs the baseline on
    three; its comparisons use the baseline's series-0 runs."""
    metrics = (*METRICS, "train_seconds")  # what each buys, and what it costs
    part = runs[runs["base"] == base] if "base" in runs else runs
    if "data_seed" not in part:
        return pooled(ablation_table(part, metrics)), [0]
    common = set.intersection(*(set(g["data_seed"]) for _, g in part.groupby("variant"))) if len(part) else set()
    return pooled(ablation_table(part[part["data_seed"].isin(common)], metrics)), sorted(int(s) for s in common)


def fmt(value, digits=3):
    if value is None or not np.isfinite(value):
        return "–"
    if value == 0 or 1e-2 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def markdown(header, rows):
    """A Markdown table from a header and rows of cells (numbers through ``fmt``)."""
    def cell(v):
        return fmt(v) if isinstance(v, (float, np.floating)) else str(v)

    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(frame):
    """A DataFrame as a Markdown table."""
    return markdown(frame.columns, frame.itertuples(index=False))


def mean_ci(row, metric):
    """'mean ± ci95' of a metric in an ablation-table row (a CI below rounding noise shows as 0)."""
    mean, ci = row[f"{metric}_mean"], row[f"{metric}_ci95"]
    if np.isfinite(ci) and ci <= 1e-9 * abs(mean):
        ci = 0.0
    return fmt(mean) + (f" ± {fmt(ci, 2)}" if np.isfinite(ci) else "")


def axes_by_base(table):
    """{base: [its ablation axes]}, the baseline first: each axis's variants vary that base in one key."""
    table = table.assign(**{"base": "baseline"} if "base" not in table else {})
    varied = table[~table["axis"].isin(("baseline", NAMED_AXIS))]
    out = {"baseline": []}
    for base, axis in dict.fromkeys(zip(varied["base"], varied["axis"])):
        out.setdefault(base, []).append(axis)
    return out


def ablation_markdown(table, metrics=("val_mse", "nrmse_84", "vpt_steps_test", "d_stsp", "d_h"), runs=None):
    """Markdown: one table per ablation axis, its base first (pooled over series; with ``runs``, over the
    series the axis ran on: ``comparable``), mean ± 95% CI and counts."""
    table = pooled(table)
    metrics = [m for m in metrics if f"{m}_mean" in table.columns]
    lines = []
    for base, axes in axes_by_base(table).items():
        rows_of_base = table if runs is None else comparable(runs, base)[0]
        for axis in axes or (["baseline"] if base == "baseline" else []):
            part = rows_of_base[(rows_of_base["variant"] == base)
                                | ((rows_of_base["axis"] == axis) & (rows_of_base["base"] == base))]
            rows = [[row["variant"], row["optimizer"], str(row["n_ok"] + row["n_unstable"]), str(row["n_diverged"])]
                    + [mean_ci(row, m) for m in metrics] for _, row in part.iterrows()]
            name = f"{axis} ({AXES[axis]})" if axis in AXES else axis
            title = name if base == "baseline" else f"{base}: {name}"
            header = [f"{METRIC_LABELS[m].label} ({METRIC_LABELS[m].unit}), mean ± 95% CI" if m in METRIC_LABELS else m
                      for m in metrics]
            lines += [f"### {title}", "", markdown(["variant", "optimizer", "runs ok", "diverged"] + header, rows), ""]
    return "\n".join(lines)


def best_variant(table):
    """(variant, optimizer) with the longest mean valid prediction time (then lowest NRMSE at 84 steps), pooled."""
    table = pooled(table)
    usable = table[(table["n_ok"] > 0) & table["vpt_steps_mean"].notna()]
    if usable.empty:
        return None
    order = usable.sort_values(["vpt_steps_mean", "nrmse_84_mean"], ascending=[False, True], kind="stable")
    row = order.iloc[0]
    return row["variant"], row["optimizer"]


def contenders(table, runs, max_hidden=60):
    """The generation question's three (variant, optimizer) pairs, chosen on validation only, pooled over
    series, among the variants that ran on every series of the study:

    ``tutorial``: the baseline trained as the tutorial did (SGD, then BFGS); ``rnn``: of every
    gradient-trained run with at most ``max_hidden`` units, the one with the longest mean valid time
    over the validation start points (ties: the lower validation NRMSE); ``reservoir``: the same among
    the ``ridge`` runs. A key is missing when nothing qualifies (e.g. no test segment, no reservoir).
    """
    table = pooled(table)
    if "vpt_steps_val_mean" not in table:
        return {}
    hidden = runs.groupby("variant")["hidden"].first() if "hidden" in runs else None
    scored = table[table["vpt_steps_val_n"] > 0]
    if "n_series" in scored and "data_seed" in runs:
        scored = scored[scored["n_series"] == runs["data_seed"].nunique()]
    out = {}
    base = scored[scored["variant"] == "baseline"]
    if not base.empty:
        tutorial = base[base["optimizer"] == "sgd+bfgs"]
        out["tutorial"] = (tutorial if not tutorial.empty else base).iloc[0]
    small = scored["optimizer"] != "ridge"
    if hidden is not None:
        small &= scored["variant"].map(hidden).le(max_hidden)
    for key, rows in (("rnn", scored[small]), ("reservoir", scored[scored["optimizer"] == "ridge"])):
        if not rows.empty:
            out[key] = by_validation(rows).iloc[0]
    return out


def by_validation(rows):
    """Ablation-table rows, best on the validation start points first: the longest mean valid time there,
    ties by the lower validation NRMSE, then the lower validation MSE (the columns present)."""
    order = [c for c in ("vpt_steps_val_mean", "nrmse_val_mean", "val_mse_mean") if c in rows]
    return rows.sort_values(order, ascending=[False] + [True] * (len(order) - 1), kind="stable")


TUTORIAL = {  # what the 2015 notebook printed (SGD after 1000 epochs; BFGS), for comparison
    "sgd": {"train_mse": 1.07e-3, "val_mse": 8.3e-4},
    "bfgs": {"train_mse": 4.0e-5, "val_mse": 4.1e-5},
}


def tutorial_comparison(runs):
    """Markdown table: the tutorial's printed MSEs against the baseline's median and 95% CI of the mean."""
    rows = []
    base = runs[(runs["variant"] == "baseline") & (runs["status"] != "diverged")]
    for opt, printed in TUTORIAL.items():
        part = base[base["optimizer"] == opt]
        for metric, value in printed.items():
            v = part[metric].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            median = fmt(float(np.median(v))) if len(v) else "–"
            mean = (fmt(float(v.mean())) + (f" ± {fmt(ci95(v), 2)}" if len(v) > 1 else "")) if len(v) else "–"
            rows.append([opt, metric, fmt(value), median, mean, str(len(v))])
    return markdown(["optimizer", "metric", "tutorial (2015)", "baseline median", "mean ± 95% CI", "n"], rows)


def timing_split(runs, job_wall=None):
    """Seconds summed over the training jobs (one per variant and series), by phase: compile (and first calls),
    SGD, quasi-Newton (BFGS, L-BFGS), ridge, closed-loop training (every optimizer of a variant
    with ``rollout_steps`` > 1), evaluation, and, given each job's wall time ``job_wall``
    {job: seconds}, what is left: process start, imports and writing the outputs."""
    split = dict.fromkeys(["compile", "sgd", "quasi-newton", "ridge", "closed-loop training", "evaluate"], 0.0)
    for _, rows in runs.groupby([k for k in ("variant", "data_seed") if k in runs], sort=False):
        first = rows.iloc[0]
        train = float(first["job_train_seconds"])
        split["compile"] += float(first["job_compile_seconds"])
        split["evaluate"] += float(first["job_evaluate_seconds"])
        if "rollout_steps" in rows and first["rollout_steps"] > 1:
            split["closed-loop training"] += train
            continue
        per_model = rows.groupby("optimizer")["train_seconds"].first()
        models = rows["seed"].nunique()
        sgd = float(per_model.get("sgd", 0.0)) * models
        ridge = float(per_model.get("ridge", 0.0)) * models
        split["sgd"] += sgd
        split["ridge"] += ridge
        split["quasi-newton"] += max(train - sgd - ridge, 0.0)
    if job_wall is not None:
        split["start, imports, writing"] = sum(job_wall.values()) - sum(split.values())
    return split


def exponent_interval(record):
    """(exponent, low, high): the generator's largest Lyapunov exponent per sample and its Student-t 95%
    interval over the independent chains of ``record`` (``results/data/lyapunov.json``); without chains the
    interval is ± 1.96 standard errors, or empty."""
    value = float(record["lyapunov_per_sample"])
    chains = np.asarray(record.get("per_chain") or [], dtype=float)
    half = ci95(chains) if len(chains) > 1 else 1.96 * float(record.get("stderr") or np.nan)
    return value, value - half, value + half
