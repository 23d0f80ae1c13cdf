"""The study's plain-data layer: config -> variants, cross-field checks, and the summary tables.

No PyTensor here: the Snakefile imports this module while it parses, and the aggregate rule uses
it to turn per-variant metrics into ``runs.csv``, ``ablation.csv`` and ``ablation.md``.
"""

import math

import numpy as np

BASELINE = {
    "hidden": 15, "nonlinearity": "tanh", "init_scale_in": 0.01, "init_scale_rec": 0.02,
    "init_scale_out": 0.01, "init_scale_bias": 0.0, "skip": False, "weight_noise": 0.0, "l1": 0.0, "l2": 1e-4,
    "lr": 0.3, "epochs": 1001, "bfgs_maxiter": 500, "bfgs_gtol": 1e-5,
    "spectral_radius": None, "input_noise": 0.0, "rollout_steps": 1, "rollout_stride": 1, "rollout_coverage": None,
    "rollout_schedule": "doubling",
    "washout": 100, "ridge": 1e-8, "onestep_weight": 1.0, "restarts": 1,
}
METRICS = ("train_mse", "val_mse", "nrmse_1", "nrmse_84", "nrmse_200", "nrmse_500", "nrmse_1000",
           "vpt_steps", "vpt_lyapunov", "spectral_error", "vpt_steps_val", "nrmse_val", "vpt_steps_test", "vpt_lyapunov_test", "nrmse_84_test",
           "d_stsp", "d_h")
NAMED_AXIS = "variant"  # the axis of the named variants in the tables
VARIANT_KEYS = ("optimizers", "data_seed", "ablations")  # what a named variant may hold besides baseline keys
STATUSES = {
    "ok": "trained, and its free-running continuation stayed finite",
    "unstable": "trained (one-step metrics valid), but the continuation overflowed; continuation metrics NaN",
    "diverged": "the training cost became NaN or inf or passed 1e6 times its initial value; the model "
                "was frozen there and all its metrics are NaN",
}


class ConfigError(ValueError):
    """A config value that breaks a rule; the message names the key and what is allowed."""


def format_value(value):
    """How a value appears in a variant name: hidden-30, skip-true, l2-0.001, l1-1e-05."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def data_seeds(config):
    """The study's series: ``data.seed`` as a list (a single seed is a list of one)."""
    seed = config["data"]["seed"]
    return [int(s) for s in (seed if isinstance(seed, (list, tuple)) else [seed])]


def _ablated(key, values, base_name, base_settings, optimizers, series):
    """One variant per value of one ablated key around ``base_name``: {name: variant}."""
    prefix = "" if base_name == "baseline" else f"{base_name}/"
    return {f"{prefix}{key}-{format_value(v)}": {
        "axis": key, "value": format_value(v), "base": base_name, "settings": {**base_settings, key: v},
        "optimizers": optimizers, "data_seeds": series} for v in values}


def _axes(block):
    """An ``ablations`` block without its ``data_seed`` entry (the series it runs on, not an axis)."""
    return {k: v for k, v in (block or {}).items() if k != "data_seed"}


def variants(config):
    """Ordered {name: {"axis", "value", "base", "settings", "optimizers", "data_seeds"}}: the baseline, one
    variant per value of the ``ablations`` block, each named variant, then one variant per value of
    a named variant's own ``ablations`` block (named ``<variant>/<key>-<value>``).

    ``base`` is the variant whose one setting a variant changes (``baseline`` for the top-level
    ablations; a named variant is its own base). ``data_seeds`` are the series a variant runs on:
    every series of the study unless its block names a ``data_seed`` list (a variant's own
    ablations inherit the variant's).
    """
    base = {**BASELINE, **config.get("baseline", {})}
    optimizers = list(config.get("optimizers", ["sgd", "bfgs", "sgd+bfgs"]))
    every = data_seeds(config)
    out = {"baseline": {"axis": "baseline", "value": "", "base": "baseline", "settings": base,
                        "optimizers": optimizers, "data_seeds": every}}
    block = config.get("ablations") or {}
    for key, values in _axes(block).items():
        out.update(_ablated(key, values, "baseline", base, optimizers, list(block.get("data_seed", every))))
    nested = {}
    for name, named in (config.get("variants") or {}).items():
        settings = {**base, **{k: v for k, v in named.items() if k not in VARIANT_KEYS}}
        series = list(named.get("data_seed", every))
        own = list(named.get("optimizers", optimizers))
        out[name] = {"axis": NAMED_AXIS, "value": name, "base": name, "settings": settings, "optimizers": own,
                     "data_seeds": series}
        block = named.get("ablations") or {}
        for key, values in _axes(block).items():
            nested.update(_ablated(key, values, name, settings, own, list(block.get("data_seed", series))))
    return {**out, **nested}


def jobs(variant_table):
    """Every (variant, data seed) pair that runs: one training job each."""
    return [(name, seed) for name, v in variant_table.items() for seed in v["data_seeds"]]


def data_length(data):
    """Samples to generate: ``data.length``, or train + validation + test when it is null."""
    length = data.get("length")
    return int(length) if length is not None else int(data["train"] + data["validation"] + data.get("test", 0))


def _check_series(where, seeds, allowed, of="the study's data seeds (data.seed"):
    """Raise ConfigError unless ``seeds`` is a non-empty list of distinct data seeds among ``allowed``."""
    if not isinstance(seeds, (list, tuple)) or not seeds or len(set(seeds)) != len(seeds) \
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"{where}: must be a non-empty list of distinct integers >= 0, got {seeds!r}")
    unknown = [s for s in seeds if s not in allowed]
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]} is not one of {of}: {allowed})")


def _check_ablations(where, block):
    """Keys, values and names of one ``ablations`` block (``where``: its config path)."""
    for key, values in _axes(block).items():
        if key not in BASELINE:
            raise ConfigError(f"{where}.{key}: not a baseline key; allowed: {', '.join(BASELINE)}, data_seed")
        if not values:
            raise ConfigError(f"{where}.{key}: must list at least one value")
        names = [format_value(v) for v in values]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.{key}: values repeat: {values!r}")


def check_config(config):
    """The rules a JSON schema cannot say; raises ConfigError naming the key at fault."""
    from .experiment import check_generation
    from .model import Spec
    from .rollout import check_rollout
    from .train import TRAINING_KEYS, check_optimizers, check_settings

    data, horizon = config["data"], config["horizon"]
    length = data_length(data)
    seed = data["seed"]
    series = seed if isinstance(seed, (list, tuple)) else [seed]
    if not series or len(set(series)) != len(series) or any(isinstance(s, bool) or int(s) != s or s < 0 for s in series):
        raise ConfigError(f"data.seed: must be an integer >= 0 or a non-empty list of distinct ones, got {seed!r}")
    series = data_seeds(config)
    if data["train"] + data["validation"] + data.get("test", 0) > length:
        raise ConfigError(f"data.train + data.validation + data.test ({data['train']} + {data['validation']} + "
                          f"{data.get('test', 0)}) must be <= data.length ({length})")
    if horizon > length - data["train"]:
        raise ConfigError(f"horizon ({horizon}) must be <= data.length - data.train "
                          f"({length} - {data['train']} = {length - data['train']})")
    generation = config.get("generation")
    if generation and data.get("test", 0) > 0:
        try:
            check_generation(generation, data["train"], data["validation"], data["train"] + data["validation"]
                             + data["test"])
        except ValueError as exc:
            raise ConfigError(str(exc).replace("length - train - validation", "data.test")) from None
    check_longterm(config)
    seeds = config["seeds"]
    if not seeds or len(set(seeds)) != len(seeds) or any(isinstance(s, bool) or int(s) != s for s in seeds):
        raise ConfigError(f"seeds: must be a non-empty list of distinct integers, got {seeds!r}")
    if not config["optimizers"] or len(set(config["optimizers"])) != len(config["optimizers"]):
        raise ConfigError(f"optimizers: must be a non-empty list without repeats, got {config['optimizers']!r}")
    block = config.get("ablations") or {}
    _check_ablations("ablations", block)
    if "data_seed" in block:
        _check_series("ablations.data_seed", block["data_seed"], series)
    taken = set(variants({**config, "variants": {}}))
    for name, named in (config.get("variants") or {}).items():
        if name in taken:
            raise ConfigError(f"variants.{name}: the name is taken by {'the baseline' if name == 'baseline' else 'an ablation variant'}; choose another")
        unknown = sorted(set(named) - set(BASELINE) - set(VARIANT_KEYS))
        if unknown:
            raise ConfigError(f"variants.{name}.{unknown[0]}: not a baseline key; allowed: {', '.join(BASELINE)}, "
                              f"{', '.join(VARIANT_KEYS)}")
        if "data_seed" in named:
            _check_series(f"variants.{name}.data_seed", named["data_seed"], series)
        block = named.get("ablations") or {}
        _check_ablations(f"variants.{name}.ablations", block)
        if "data_seed" in block:
            _check_series(f"variants.{name}.ablations.data_seed", block["data_seed"],
                          list(named.get("data_seed", series)), f"the series variant {name} runs on (its data_seed")
    for name, variant in variants(config).items():
        if variant["axis"] == "baseline":
            where = "baseline"
        elif variant["axis"] == NAMED_AXIS:
            where = f"variants.{name}"
        elif variant["base"] == "baseline":
            where = f"ablations.{variant['axis']} (value {variant['value']})"
        else:
            where = f"variants.{variant['base']}.ablations.{variant['axis']} (value {variant['value']})"
        settings = variant["settings"]
        try:
            spec = Spec.from_dict(settings)
            check_settings(**{k: settings[k] for k in TRAINING_KEYS})
            check_optimizers(variant["optimizers"])
            if spec.rollout_steps > 1:
                check_rollout(data["train"], spec.rollout_steps, spec.washout)
            if any(o.startswith("ridge") for o in variant["optimizers"]) and not spec.washout < data["train"] - 1:
                raise ValueError(f"washout ({spec.washout}) must be < data.train - 1 ({data['train'] - 1}) "
                                 "to leave rows for the ridge fit")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None


def check_longterm(config):
    """``longterm``: the long free runs' settings (``rnn.longterm.check_settings``), and their start
    point's room in the test segment; returns the settings with defaults, or None without a test segment."""
    from .longterm import check_settings

    if not config["data"].get("test", 0):
        return None
    try:
        settings = check_settings(config.get("longterm") or {})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return settings


# --- tables -------------------------------------------------------------------------------------

def ci95(values):
    """Half-width of the 95% confidence interval of the mean (Student's t); NaN below two values."""
    n = len(values)
    if n < 2:
        return float("nan")
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


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
            title = axis if base == "baseline" else f"{base}: {axis}"
            lines += [f"### {title}", "", markdown(["variant", "optimizer", "n ok", "diverged"] + metrics, rows), ""]
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
