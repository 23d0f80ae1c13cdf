"""Check a rerun of the study against the published one: the same runs, the same numbers within stated bounds.

``compare(rerun, published, same_environment)`` lines up two ``runs.csv`` tables by variant,
series (data seed), optimizer and seed and returns what agrees and every difference beyond tolerance; ``report``
writes it as Markdown text. The rules, and why (README, "Checking a rerun"):

- deterministic optimizers (``DETERMINISTIC``: SGD, the ridge readout) give the same bits for the
  same software on the same CPU: each run's metrics must agree exactly when the environment
  records match, else within ``DETERMINISTIC_RTOL`` relative (integer-valued metrics exactly);
  SGD on a closed-loop loss (``amplifies``) is compared by the mean rule below there instead;
- every other optimizer (BFGS, L-BFGS, ...) turns last-bit differences into a slightly different
  optimum: per variant x series x optimizer, the mean over seeds of each metric must lie within
  ``tolerance()`` of the published mean: the larger of the published 95% CI half-width and
  ``MEAN_RTOL`` of the published mean;
- the long-run measures (``LONG_RUN``: ``d_stsp``, ``d_h``) score a free run of thousands of steps, far past
  the point where a last-bit difference has grown to the attractor's size: on another machine a deterministic
  model's long run is another sample of the same attractor. They are compared exactly on the published
  environment; elsewhere, for every optimizer, as means over seeds within the larger of the mean rule's
  tolerance and ``LONG_RUN_ATOL`` (about the largest distance the study measured between two independent
  true trajectories of the same length: its floor);
- a run's status (ok, unstable, diverged), the settings that say what was run, and which
  variants, optimizers and seeds there are must agree exactly. Metrics are compared on the runs
  whose status agrees (a changed status is one difference, not one per metric).

CLI: ``python -m rnn.verify RERUN_RUNS PUBLISHED_RUNS [--published-env ENV] [--report PATH]`` prints
the report and exits 1 when anything differs beyond tolerance, 2 on a bad argument or file.
"""

import argparse
import math
import re
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import io, provenance
from .study import BASELINE, ci95, fmt, markdown

KEYS = ["variant", "data_seed", "optimizer", "seed"]
GROUP = KEYS[:3]  # what one row of the report covers: a variant's runs with one optimizer on one series
STATUS = "status"
SETTINGS = ("axis", "value", "backend", *BASELINE)  # columns that say what was run, whatever their values
IGNORED = re.compile(r"seconds|iterations|evaluations|message")  # timing; an optimizer's own counts and words
DETERMINISTIC = ("sgd", "ridge")
DETERMINISTIC_RTOL = 1e-9
MEAN_RTOL = 0.01
# About the largest distances between independent true trajectories of 10,000 steps (ten of them against the
# reference, config/README.md "longterm"): D_stsp 0.092 ± 0.028, largest 0.158; D_H 0.010 ± 0.007, largest 0.025.
LONG_RUN_ATOL = {"d_stsp": 0.15, "d_h": 0.025}
LONG_RUN = tuple(LONG_RUN_ATOL)


def amplifies(runs):
    """Whether these runs' training feeds the network its own predictions (``rollout_steps`` > 1): SGD
    through a closed loop grows a last-bit difference to a different trajectory (measured: a change of
    XLA's thread pool moved such SGD runs' metrics by 1e-3 and more), so on another machine they are
    compared like BFGS, as means over seeds."""
    return "rollout_steps" in runs and bool((pd.to_numeric(runs["rollout_steps"], errors="coerce") > 1).any())


@dataclass
class Difference:
    """One difference beyond tolerance: where (the (variant, data seed, optimizer) group, as far as known, and
    the seed), what (a column, or the run itself), how."""
    group: tuple
    what: str
    text: str
    seed: object = None

    def __str__(self):
        variant, series, optimizer = (*self.group, None, None, None)[:3]
        where = [variant, f"data seed {series}" if series is not None else "", optimizer,
                 f"seed {self.seed}" if self.seed is not None else ""]
        return ", ".join([w for w in where if w] + [f"{self.what}: {self.text}"])


@dataclass
class Comparison:
    """What ``compare`` found: one report row per variant x series x optimizer, the columns by role, the differences."""
    rows: list = field(default_factory=list)
    differences: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    settings: list = field(default_factory=list)
    ignored: list = field(default_factory=list)
    runs: int = 0
    bit_identical: bool = False
    same_environment: bool = False

    @property
    def ok(self):
        return not self.differences


def read_runs(path):
    """A runs.csv table checked for its keys and for repeated runs; raises io.BadFileError."""
    frame = io.load_csv(path, [*KEYS, STATUS])
    repeated = frame[frame.duplicated(KEYS, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise io.BadFileError(path, f"more than one row for variant {first['variant']}, data seed "
                                    f"{first['data_seed']}, optimizer {first['optimizer']}, seed {first['seed']}")
    return frame


def tolerance(mean, ci, atol=0.0):
    """Allowed |rerun mean - published mean| of a non-deterministic optimizer: max(95% CI, 1% of the mean),
    and at least ``atol`` (a long-run measure's floor, ``LONG_RUN_ATOL``)."""
    return max(ci if np.isfinite(ci) else 0.0, MEAN_RTOL * abs(mean), atol)


def column_roles(rerun, published):
    """(metrics, settings, ignored): the columns besides the keys and the status, by how they are compared.

    A setting is a column named in ``SETTINGS`` or one constant within every variant of both tables
    (settings are per variant; metrics vary between optimizers and seeds). Timing and optimizers'
    own counts and messages (``IGNORED``) are not compared, nor text that varies within a variant.
    """
    columns = [c for c in dict.fromkeys([*published.columns, *rerun.columns]) if c not in (*KEYS, STATUS)]
    tables = (rerun, published)
    several = all(len(t) and t.groupby("variant").size().max() > 1 for t in tables)

    def constant(c):
        return several and all(c in t and (t.groupby("variant")[c].nunique(dropna=False) <= 1).all() for t in tables)

    metrics, settings, ignored = [], [], []
    for c in columns:
        if IGNORED.search(c):
            ignored.append(c)
        elif c in SETTINGS or constant(c):
            settings.append(c)
        elif all(pd.api.types.is_numeric_dtype(t[c]) for t in tables if c in t):
            metrics.append(c)
        else:
            ignored.append(c)
    return metrics, settings, ignored


def _same(a, b):
    """Equal to the last bit, NaN equal to NaN."""
    nan = [isinstance(v, float) and math.isnan(v) for v in (a, b)]
    return all(nan) or (not any(nan) and a == b)


def _text(value):
    return f"{value:.17g}" if isinstance(value, float) else repr(value)


def _integer_valued(*columns):
    values = np.concatenate([np.asarray(c, dtype=float) for c in columns])
    values = values[np.isfinite(values)]
    return bool(np.all(values == np.round(values)))


def _per_run(group, pub, new, metrics, exact):
    """A deterministic optimizer: every metric of every run. Returns (differences, (largest |Δ|/tolerance, metric))."""
    found, worst = [], (0.0, "")
    for m in metrics:
        strict = exact or _integer_valued(pub[m], new[m])
        for seed, a, b in zip(pub.index, pub[m].astype(float), new[m].astype(float)):
            if _same(a, b):
                continue
            finite = np.isfinite(a) and np.isfinite(b)
            ratio = math.inf if strict or not finite else abs(a - b) / (DETERMINISTIC_RTOL * max(abs(a), abs(b)))
            worst = max(worst, (ratio, m))
            if ratio > 1:
                bound = "exactly" if strict else f"within {DETERMINISTIC_RTOL:g} relative"
                found.append(Difference(group, m, f"{_text(b)} here against {_text(a)} published "
                                                               f"(must agree {bound})", seed))
    return found, worst


def _kept(runs, metric):
    """The finite values of a metric over the runs that did not diverge (as the ablation table averages)."""
    values = runs.loc[runs[STATUS] != "diverged", metric].to_numpy(dtype=float)
    return values[np.isfinite(values)]


def _means(group, pub, new, metrics, long_run=True):
    """Any other optimizer: the mean over seeds of each metric, within ``tolerance`` (``long_run``: with
    ``LONG_RUN_ATOL`` for the long-run measures)."""
    found, worst = [], (0.0, "")
    for m in metrics:
        a, b = _kept(pub, m), _kept(new, m)
        if len(a) != len(b):
            worst = max(worst, (math.inf, m))
            found.append(Difference(group, m, f"finite in {len(b)} runs here against {len(a)} published"))
            continue
        if not len(a):
            continue
        mean_a, mean_b, ci = float(a.mean()), float(b.mean()), ci95(a)
        atol = LONG_RUN_ATOL.get(m, 0.0) if long_run else 0.0
        tol, delta = tolerance(mean_a, ci, atol), abs(mean_b - mean_a)
        ratio = 0.0 if delta == 0 else delta / tol if tol > 0 else math.inf
        worst = max(worst, (ratio, m))
        if ratio > 1:
            moved = f" ({100 * (mean_b - mean_a) / abs(mean_a):+.3g}%)" if mean_a else ""
            if atol and tol == atol:
                why = "the long-run measure's floor"
            elif np.isfinite(ci) and ci >= MEAN_RTOL * abs(mean_a):
                why = "the published 95% CI"
            else:
                why = f"{MEAN_RTOL:.0%} of the published mean" + (", whose seeds all agree" if ci == 0 else "")
            found.append(Difference(group, m, f"mean {fmt(mean_b, 4)} here against {fmt(mean_a, 4)} "
                                                           f"published{moved}; tolerance ± {fmt(tol, 2)} ({why})"))
    return found, worst


def _missing(rerun, published):
    """Variants, series, optimizers and seeds in one table only, each named once, at its coarsest level."""
    def keys(frame, n):
        return set(frame[KEYS[:n]].itertuples(index=False, name=None))

    found = []
    for n, what in ((1, "variant"), (2, "series"), (3, "optimizer"), (4, "run")):
        here, there = keys(rerun, n), keys(published, n)
        parents = keys(rerun, n - 1) & keys(published, n - 1) if n > 1 else {()}
        for key in sorted(here ^ there, key=str):
            if key[:-1] in parents:
                where = "only in the rerun" if key in here else "missing from the rerun"
                found.append(Difference(key[:3], what, where, key[3] if n == 4 else None))
    return found


def compare(rerun, published, same_environment=False):
    """Compare a rerun's runs table with the published one by the rules of this module's docstring."""
    metrics, settings, ignored = column_roles(rerun, published)
    result = Comparison(metrics=metrics, settings=settings, ignored=ignored, same_environment=same_environment)
    untimed = [c for c in published.columns if "seconds" not in c]
    result.bit_identical = (untimed == [c for c in rerun.columns if "seconds" not in c]
                            and published[untimed].equals(rerun[untimed]))
    result.differences += _missing(rerun, published)
    for c in [*metrics, *settings]:
        for frame, name in ((published, "the published table"), (rerun, "the rerun")):
            if c not in frame:
                result.differences.append(Difference((), c, f"column missing from {name}"))
    both = [c for c in [STATUS, *settings, *metrics] if c in published and c in rerun]
    metrics, settings = [c for c in metrics if c in both], [c for c in settings if c in both]

    pub_all, new_all = published.set_index(KEYS)[both], rerun.set_index(KEYS)[both]
    common = pub_all.index.intersection(new_all.index, sort=False)
    pub_all, new_all = pub_all.loc[common], new_all.loc[common]
    result.runs = len(common)
    groups = set(common.droplevel("seed"))
    for group in dict.fromkeys(published[GROUP].itertuples(index=False, name=None)):
        if group not in groups:  # not in the rerun: named by _missing
            continue
        pub, new = (t.xs(group, level=GROUP) for t in (pub_all, new_all))
        found = [Difference(group, c, f"{_text(b)} here against {_text(a)} published", seed)
                 for c in [STATUS, *settings] for seed, a, b in zip(pub.index, pub[c], new[c]) if not _same(a, b)]
        agree = (pub[STATUS] == new[STATUS]).to_numpy()
        per_run = group[2] in DETERMINISTIC and (same_environment or not amplifies(pub))
        if per_run:
            rule = "each run, " + ("exactly" if same_environment else f"{DETERMINISTIC_RTOL:g} relative")
            long_run = [] if same_environment else [m for m in metrics if m in LONG_RUN]
            more, worst = _per_run(group, pub[agree], new[agree], [m for m in metrics if m not in long_run],
                                   same_environment)
            if long_run:
                rule += "; long runs: mean over seeds, max(95% CI, 1%, floor)"
                extra, worst_long = _means(group, pub[agree], new[agree], long_run)
                more, worst = more + extra, max(worst, worst_long)
        else:
            rule = f"mean over seeds, max(95% CI, {MEAN_RTOL:.0%})" + (
                "; SGD on a closed-loop loss" if group[2] in DETERMINISTIC else "")
            more, worst = _means(group, pub[agree], new[agree], metrics, long_run=not same_environment)
        found += more
        result.differences += found
        result.rows.append([*group, rule, str(len(pub)),
                            "same" if agree.all() else f"{int((~agree).sum())} differ",
                            f"{len(metrics) - len({d.what for d in more})} of {len(metrics)}",
                            f"{worst[0]:.2g} ({worst[1]})" if worst[0] else "0",
                            "agrees" if not found else "DIFFERS"])
    return result


def report(result, rerun_path="the rerun", published_path="the published table", environment=None):
    """The comparison as Markdown: environment, one row per variant x series x optimizer, bit-identity, differences, verdict.

    ``environment``: what differs from the published environment record ([] if nothing, None if no record).
    """
    if result.same_environment:
        env = ("the same software versions and CPU as the published record, so deterministic optimizers "
               "must agree to the last bit")
    else:
        env = ("no published record" if environment is None else "differs from the published record: "
               + "; ".join(environment)) + (f"; deterministic optimizers must agree within {DETERMINISTIC_RTOL:g} "
                                             "relative (integer-valued metrics exactly)")
    header = ["variant", "data seed", "optimizer", "rule", "runs", "status", "metrics agreeing", "largest |Δ|/tolerance", "verdict"]
    lines = [f"# Verify: {rerun_path} against {published_path}", "",
             f"Environment: {env}.", "",
             f"Compared {result.runs} runs present in both tables. Metrics: {', '.join(result.metrics) or 'none'}. "
             f"Settings (exactly): {', '.join(result.settings) or 'none'}. "
             f"Not compared: {', '.join(result.ignored) or 'none'}.", "",
             markdown(header, result.rows), "",
             "Bit-identical, timing columns aside: " + ("yes." if result.bit_identical else "no."), ""]
    if result.differences:
        lines += [f"Differences beyond tolerance ({len(result.differences)}):", ""]
        lines += [f"- {d}" for d in result.differences]
        lines += ["", f"verify: FAILED, {len(result.differences)} difference(s) beyond tolerance."]
    else:
        lines.append("verify: OK, the rerun agrees with the published tables within tolerance.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rnn.verify", description=(
        "Compare a rerun's runs.csv with the published one; exit 1 if anything differs beyond tolerance."))
    parser.add_argument("rerun", metavar="RERUN_RUNS", help="the rerun's table, e.g. results/tables/runs.csv")
    parser.add_argument("published", metavar="PUBLISHED_RUNS", help="e.g. results/published/tables/runs.csv")
    parser.add_argument("--published-env", metavar="ENV", help=(
        "the published environment record (results/published/environment.json); when it matches this "
        "machine, deterministic optimizers must agree to the last bit"))
    parser.add_argument("--report", metavar="PATH", help="also write the report to PATH (e.g. results/verify.md)")
    args = parser.parse_args(argv)
    tables = {}
    for name, path in (("RERUN_RUNS", args.rerun), ("PUBLISHED_RUNS", args.published)):
        try:
            tables[name] = read_runs(path)
        except io.BadFileError as exc:
            parser.error(f"{name} {path}: {exc.problem}")
    record = None
    if args.published_env:
        try:
            record = io.load_json(args.published_env)
        except io.BadFileError as exc:
            parser.error(f"--published-env {args.published_env}: {exc.problem}")
        if not isinstance(record, dict):
            parser.error(f"--published-env {args.published_env}: not an environment record (a JSON object)")
    environment = None if record is None else provenance.differences(record, provenance.environment())
    result = compare(tables["RERUN_RUNS"], tables["PUBLISHED_RUNS"], same_environment=environment == [])
    text = report(result, args.rerun, args.published, environment)
    sys.stdout.write(text)
    if args.report:
        io.save_text(args.report, text)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
