"""Check a rerun of the study against the published one: its numbers, then its conclusions.

``compare(rerun, published, same_environment, floors)`` lines up two ``runs.csv`` tables by variant,
series (data seed), optimizer and seed; ``report`` writes what it found as Markdown. Two kinds of
agreement (docs/verify.md):

- **bit for bit** where the computation is deterministic and the machine the same: when the environment
  records match (``rnn.provenance.differences`` is empty), every run of a deterministic optimizer
  (``DETERMINISTIC``: SGD, on any loss, and the ridge readout) must agree to the last bit, and every
  run's status must agree;
- **as a second sample** everywhere else (another machine; BFGS and L-BFGS anywhere): a last-bit
  difference that training amplifies (quasi-Newton steps, a closed-loop loss, a 10,000-step free run)
  makes the rerun a new draw of the same experiment, and a deterministic one-step run may still move
  in its last bits. Per (variant, series, optimizer) group and metric, ``two_sample_test`` asks whether the
  rerun's runs and the published ones could come from one distribution: Student's t, paired by seed and
  unpaired, the standard deviations floored by the metric's resolution (``resolution_floor``), so
  agreeing seeds never give a zero-width interval. Holm's method over all
  these comparisons (``holm``) keeps the chance that a correct rerun fails anywhere at most ``ALPHA``.
  What moved without failing is listed with its size;
- **conclusions** (``rnn.conclusions``): the findings' verdicts (``conclusions``: the best variant per question and
  optimizer and whether it is apart from the baseline, every ablation around a named variant against
  it, the generation contenders, their ranking, their targets, whether each stays on the attractor,
  which runs diverge) are recomputed from both tables with ``rnn.findings``' own functions. One that
  changes fails (``state``), unless the change is one sampling makes: another choice that one of the
  tables cannot tell from the published one (a tie), or a 95%-CI verdict that moved between "apart"
  and "overlap" (fragile: the published verdict sat at its boundary); those are listed, not failed.

Settings (what was run) and which variants, series, optimizers and seeds exist must agree exactly.

CLI: ``python -m rnn.verify RERUN_RUNS PUBLISHED_RUNS [--published-env ENV] [--floors ATTRACTOR]
[--partial] [--report PATH]`` prints the report and exits 1 when a number or a conclusion differs
beyond sampling, 2 on a bad argument or file. ``--partial``: the rerun (a runs.csv, or a folder of
training jobs such as results/runs) covers some jobs only, checked in place of the published ones.
"""

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import backends, io, provenance
from .conclusions import (DIVERGENCE, STATES, Conclusion, Verdict, compare_conclusions,  # noqa: F401
                          conclusions, lyapunov_exponent, state)
from .settings import BASELINE
from .study import fmt, markdown

KEYS = ["variant", "data_seed", "optimizer", "seed"]
GROUP = KEYS[:3]  # one comparison unit: a variant's runs with one optimizer on one series
STATUS = "status"
SETTINGS = ("axis", "value", "backend", *BASELINE)  # columns that say what was run, whatever their values
IGNORED = re.compile(r"seconds|iterations|evaluations|message")  # timing; an optimizer's own counts and words
DETERMINISTIC = ("sgd", "ridge")

ALPHA = 0.01
"""Family-wise error rate: the chance that a rerun which differs from the published study only by
sampling (rounding amplified by training) fails anywhere, over all the study's comparisons together
(some 1,900: 110 groups x 17 or 18 metrics). Holm's method spends it. 1%: a reader on another machine
should almost never see a false alarm; a real change of a deterministic or one-step result moves its
runs by far more than their spread, and still fails (docs/verify.md)."""

RESOLUTION_RTOL = 1e-4
"""The smallest move, relative to a metric's mean magnitude, that the study resolves: the findings print
three significant digits (1e-3 relative at best) and this is a tenth of it. It floors every standard
deviation of ``two_sample_test``, so a group whose five seeds all moved by the same last bits (a
deterministic run on another CPU, with a systematically different rounding) cannot fail: with five
seeds, a move shared by every seed fails only past about 0.17% of the mean (paired t > 39, Holm's and
Bonferroni's bound at ``ALPHA`` over the study's 1,900 comparisons)."""

LONG_RUN_SD = {"d_stsp": 0.028, "d_h": 0.007}
"""The long-run measures' own resolution: the standard deviation of D_stsp and D_H between ten
independent true trajectories of 10,000 steps (config/README.md, "longterm": 0.092 +- 0.028 and
0.010 +- 0.007). A free run that long outlives any last-bit difference, so on another machine it is
another sample of its attractor: two samples differ by that much whatever the model."""


def amplifies(runs):
    """Whether these runs' training feeds the network its own predictions (``rollout_steps`` > 1): SGD
    through a closed loop grows a last-bit difference to a different trajectory (measured: a change of
    XLA's thread pool moved such SGD runs' metrics by 1e-3 and more)."""
    return "rollout_steps" in runs and bool((pd.to_numeric(runs["rollout_steps"], errors="coerce") > 1).any())


@dataclass
class Difference:
    """One difference beyond sampling: where (the (variant, data seed, optimizer) group, as far as known, and
    the seed), what (a column, the run itself, or a conclusion), how."""
    group: tuple
    what: str
    text: str
    seed: object = None

    def __str__(self):
        variant, series, optimizer = (*self.group, None, None, None)[:3]
        where = [variant, f"data seed {series}" if series is not None else "", optimizer,
                 f"seed {self.seed}" if self.seed is not None else ""]
        return ", ".join([w for w in where if w] + [f"{self.what}: {self.text}"])


def _percent(fraction):
    """A relative move as a signed percentage: +0.4%, -9.1e-14%, +480%."""
    value = 100 * fraction
    return f"{value:+.0f}%" if abs(value) >= 100 else f"{value:+.3g}%" if abs(value) >= 0.01 else f"{value:+.2g}%"


@dataclass
class Test:
    """One group x metric compared as two samples: the means over the paired runs, the mean and 95% interval
    of the per-seed differences (rerun - published), the floor used, the p-value, and Holm's adjusted p."""
    group: tuple
    metric: str
    n: int
    published: float
    rerun: float
    delta: float
    half_width: float
    floor: float
    p: float
    differing: int = 0  # pairs whose values differ at all
    p_adjusted: float = float("nan")

    @property
    def relative(self):
        """The move of the mean relative to the published mean's magnitude (0 when nothing moved)."""
        scale = abs(self.published) or abs(self.rerun)
        return 0.0 if self.rerun == self.published else (self.rerun - self.published) / scale if scale else math.inf

    @property
    def failed(self):
        return self.p_adjusted < ALPHA

    def text(self):
        move = f" ({_percent(self.relative)})" if np.isfinite(self.relative) else ""
        return (f"mean {fmt(self.rerun, 4)} here against {fmt(self.published, 4)} published{move} over {self.n} "
                f"paired runs; difference {fmt(self.delta, 3)} ± {fmt(self.half_width, 2)} (95%, sd floor "
                f"{fmt(self.floor, 2)}); Holm-adjusted p = {self.p_adjusted:.2g} < {ALPHA:g}")


@dataclass
class Comparison:
    """What ``compare`` found: per group its rule and what moved, the tests, the conclusions, the differences."""
    groups: list = field(default_factory=list)
    tests: list = field(default_factory=list)
    conclusions: list = field(default_factory=list)
    differences: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    settings: list = field(default_factory=list)
    ignored: list = field(default_factory=list)
    added: list = field(default_factory=list)  # columns only the rerun has (measures newer than the publication)
    runs: int = 0
    bit_identical: bool = False
    same_environment: bool = False
    partial: list = None  # the jobs (variant, series) a partial rerun ran; the rest are the published runs

    @property
    def ok(self):
        return not self.differences

    @property
    def changed(self):
        return [c for c in self.conclusions if c.state == "changed"]


@dataclass
class Group:
    """One (variant, series, optimizer) group: its rule, its runs, and what moved (status notes, tests)."""
    key: tuple
    rule: str
    runs: int
    notes: list = field(default_factory=list)
    tests: list = field(default_factory=list)
    identical: bool = True
    failed: bool = False


def read_runs(path):
    """A runs.csv table checked for its keys and for repeated runs; raises io.BadFileError."""
    frame = io.load_csv(path, [*KEYS, STATUS])
    repeated = frame[frame.duplicated(KEYS, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise io.BadFileError(path, f"more than one row for variant {first['variant']}, data seed "
                                    f"{first['data_seed']}, optimizer {first['optimizer']}, seed {first['seed']}")
    return frame


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


# --- numbers: two samples ------------------------------------------------------------------------

def quantum(values):
    """The step of a metric that takes values on a grid (valid steps: whole or half steps; in Lyapunov
    times, those steps times the exponent): the smallest gap between its distinct values when every value
    is a whole multiple of it, else 0 (a continuous metric)."""
    values = np.unique(np.asarray(values, dtype=float)[np.isfinite(values)])
    if len(values) < 3:
        return 0.0
    step = float(np.min(np.diff(values)))
    ratio = values / step
    return step if np.all(np.abs(ratio - np.round(ratio)) < 1e-6 * np.maximum(1, np.abs(ratio))) else 0.0


def resolution_floor(published, rerun, metric, step=0.0):
    """The least standard deviation granted to the per-seed differences of ``metric``: its resolution, the
    largest of ``RESOLUTION_RTOL`` of the values' mean magnitude, its grid ``step`` (``quantum``) and, for a
    long-run measure, ``LONG_RUN_SD`` (each said where it is defined). Never 0 unless every value is 0."""
    scale = float(np.mean(np.abs(np.concatenate([published, rerun])))) if len(published) else 0.0
    return max(RESOLUTION_RTOL * scale, step, LONG_RUN_SD.get(metric, 0.0))


def _t(delta, sd, n, df):
    """(half-width of the 95% interval, two-sided p) of a mean ``delta`` with standard error sd/sqrt(n):
    Student's t on ``df`` degrees of freedom (the normal law with 0, ``sd`` then being known)."""
    from scipy import special

    if sd == 0:
        return 0.0, 0.0 if delta else 1.0
    se, t = sd / math.sqrt(n), abs(delta) * math.sqrt(n) / sd
    if df > 0:
        return float(special.stdtrit(df, 0.975) * se), float(2 * special.stdtr(df, -t))
    return float(special.ndtri(0.975) * se), float(2 * special.ndtr(-t))


def two_sample_test(published, rerun, floor):
    """(mean difference, 95% half-width, two-sided p) of rerun - published over paired runs (one seed each),
    every standard deviation floored at ``floor``; the smaller p of two tests, doubled (Bonferroni):

    - paired: Student's t on the per-seed differences (n - 1 degrees of freedom). It sees a move shared by
      every seed of runs that barely resample (a one-step fit moves each seed by its last bits);
    - unpaired: the two-sample t with one pooled variance (2n - 2 degrees of freedom: the two samples come
      from one distribution under sampling, so one variance). It sees a move of runs that are each a new
      draw (quasi-Newton steps, a closed loop), which pairing by seed does not tighten.

    Both hold under sampling: the two machines are interchangeable, so each difference is symmetric about 0
    and the samples share one law; the same seed's runs do not anti-correlate, which would make the
    unpaired test too bold."""
    a, b = np.asarray(published, dtype=float), np.asarray(rerun, dtype=float)
    d, n = b - a, len(a)
    if not n or not np.any(d):
        return 0.0, 0.0, 1.0
    delta = float(d.mean())
    paired = _t(delta, max(float(np.std(d, ddof=1)) if n > 1 else 0.0, floor), n, n - 1)
    tests = [paired]
    if n > 1:
        pooled = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
        tests.append(_t(delta, max(pooled, floor) * math.sqrt(2), n, 2 * n - 2))
    half, p = min(tests, key=lambda t: t[1])
    return delta, half, min(1.0, len(tests) * p)


def holm(p):
    """Holm's step-down adjusted p-values: reject where adjusted < alpha keeps the family-wise error at alpha."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order])) if m else []
    return adjusted


def _kept(runs, metric, diverged):
    """A metric's values with NaN where the ablation table leaves them out: ``diverged`` runs, non-finite values."""
    values = runs[metric].to_numpy(dtype=float).copy()
    values[diverged | ~np.isfinite(values)] = np.nan
    return values


def _as_samples(group, pub, new, metrics, steps):
    """A group compared as two samples: ([notes: status changes, finite counts], [a Test per metric], [differences])."""
    notes = [f"seed {seed}: {b} here, {a} published"
             for seed, a, b in zip(pub.index, pub[STATUS], new[STATUS]) if a != b]
    tests, found = [], []
    gone = [(t[STATUS] == "diverged").to_numpy() for t in (pub, new)]
    for m in metrics:
        a, b = _kept(pub, m, gone[0]), _kept(new, m, gone[1])
        here, there = np.isfinite(b), np.isfinite(a)
        if here.sum() != there.sum():
            if not here.any() or not there.any():  # a metric that vanished (or appeared) is no sampling
                found.append(Difference(group, m, f"finite in {here.sum()} runs here against {there.sum()} published"))
                continue
            notes.append(f"{m} finite in {here.sum()} runs here against {there.sum()} published")
        both = here & there
        if not both.any():
            continue
        floor = resolution_floor(a[both], b[both], m, steps.get(m, 0.0))
        delta, half, p = two_sample_test(a[both], b[both], floor)
        a, b = a[both], b[both]
        tests.append(Test(group, m, len(a), float(a.mean()), float(b.mean()), delta, half, floor, p,
                          int(np.sum(a != b))))
    return notes, tests, found


def _bit_for_bit(group, pub, new, metrics):
    """A deterministic optimizer on the published machine: every metric of every run, to the last bit."""
    return [Difference(group, m, f"{_text(b)} here against {_text(a)} published (must agree exactly)", seed)
            for m in metrics for seed, a, b in zip(pub.index, pub[m].astype(float), new[m].astype(float))
            if not _same(a, b)]


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


def jobs_table(folder, published):
    """The runs of the training jobs under ``folder`` (``<variant>/data-<seed>/metrics.csv``, as rule train
    writes them, e.g. results/runs) as rows of a runs table, for a rerun of part of the study, which the
    aggregate rule does not tabulate: each variant's settings (the published table's columns that
    metrics.csv lacks) are the published ones. Raises io.BadFileError naming a file at fault."""
    folder = Path(folder)
    paths = sorted(folder.glob("**/data-*/metrics.csv"))
    if not paths:
        raise io.BadFileError(folder, "holds no <variant>/data-<seed>/metrics.csv")
    frames = []
    for path in paths:
        variant, series = path.parent.parent.relative_to(folder).as_posix(), path.parent.name.removeprefix("data-")
        frame = io.load_csv(path, ["optimizer", "seed", STATUS])
        known = published[published["variant"] == variant]
        if known.empty or not series.isdigit():
            raise io.BadFileError(path, f"variant {variant}, series {series}: not a job of the published study")
        meta = known.iloc[0][[c for c in published.columns if c not in frame.columns and c not in KEYS]]
        frames.append(frame.assign(variant=variant, data_seed=int(series), **meta.to_dict()))
    runs = pd.concat(frames, ignore_index=True)
    return runs[[c for c in published.columns if c in runs] + [c for c in runs if c not in published]]


def merge_partial(rerun, published):
    """(the published table with the rerun's jobs (variant, series) in place of its own, [those jobs]): a
    rerun of part of the study, checked together with the rest of it as published."""
    jobs = list(dict.fromkeys(rerun[["variant", "data_seed"]].itertuples(index=False, name=None)))
    mine = pd.Series(list(zip(published["variant"], published["data_seed"]))).isin(jobs).to_numpy()
    merged = pd.concat([published[~mine], rerun], ignore_index=True)
    order = {key: i for i, key in enumerate(published[KEYS].itertuples(index=False, name=None))}
    rank = [order.get(key, len(order)) for key in merged[KEYS].itertuples(index=False, name=None)]
    merged = merged.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    return merged[[c for c in published.columns if c in merged] + [c for c in merged if c not in published]], jobs


# --- the whole comparison ------------------------------------------------------------------------

def compare(rerun, published, same_environment=False, floors=None):
    """Compare a rerun's runs table with the published one by the rules of this module's docstring.
    ``floors``: the long-term measures' floor and ceilings (``attractor.json``'s ``floors``), for the
    contenders' attractor verdicts (left out without them)."""
    # a measure added since the study was published has nothing to be checked against: listed, not compared
    added = [c for c in rerun.columns if c not in published.columns]
    rerun = rerun.drop(columns=added)
    metrics, settings, ignored = column_roles(rerun, published)
    result = Comparison(metrics=metrics, settings=settings, ignored=ignored, same_environment=same_environment,
                        added=added)
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
    steps = {m: quantum(np.concatenate([published[m].to_numpy(dtype=float), rerun[m].to_numpy(dtype=float)]))
             for m in metrics}

    pub_all, new_all = published.set_index(KEYS)[both], rerun.set_index(KEYS)[both]
    common = pub_all.index.intersection(new_all.index, sort=False)
    pub_all, new_all = pub_all.loc[common], new_all.loc[common]
    result.runs = len(common)
    present = set(common.droplevel("seed"))
    for key in dict.fromkeys(published[GROUP].itertuples(index=False, name=None)):
        if key not in present:  # not in the rerun: named by _missing
            continue
        pub, new = (t.xs(key, level=GROUP) for t in (pub_all, new_all))
        found = [Difference(key, c, f"{_text(b)} here against {_text(a)} published", seed)
                 for c in settings for seed, a, b in zip(pub.index, pub[c], new[c]) if not _same(a, b)]
        group = Group(key, "", len(pub))
        if same_environment:  # on the published machine a status is a result of deterministic code
            found += [Difference(key, STATUS, f"{_text(b)} here against {_text(a)} published", seed)
                      for seed, a, b in zip(pub.index, pub[STATUS], new[STATUS]) if a != b]
        if same_environment and key[2] in DETERMINISTIC:
            group.rule = "bit for bit"
            found += _bit_for_bit(key, pub, new, metrics)
        else:
            group.rule = "second sample" + (" (closed loop)" if amplifies(pub) else "")
            notes, group.tests, more = _as_samples(key, pub, new, metrics, steps)
            group.notes += [] if same_environment else notes
            found += more
        group.identical = all(_same(a, b) for c in (STATUS, *metrics) for a, b in zip(pub[c], new[c]))
        group.failed = bool(found)
        result.differences += found
        result.tests += group.tests
        result.groups.append(group)
    for test, p in zip(result.tests, holm([t.p for t in result.tests])):
        test.p_adjusted = float(p)
    for group in result.groups:
        for test in group.tests:
            if test.failed:
                group.failed = True
                result.differences.append(Difference(group.key, test.metric, test.text()))
    if {"variant", "optimizer", STATUS, "val_mse"} <= set(rerun.columns) & set(published.columns):
        result.conclusions = compare_conclusions(rerun, published, floors)
    result.differences += [Difference((), f"conclusion '{c.what}'", f"{c.rerun} here against {c.published} published")
                           for c in result.changed]
    return result


def report(result, rerun_path="the rerun", published_path="the published table", environment=None):
    """The comparison as Markdown: environment, summary, failures, what moved within sampling, conclusions, verdict.

    ``environment``: what differs from the published environment record ([] if nothing, None if no record).
    """
    if result.same_environment:
        env = ("the same software versions and CPU as the published record: deterministic optimizers (SGD, "
               "ridge) must agree to the last bit, and every run's status exactly")
    else:
        env = ("no published record" if environment is None else "differs from the published record: "
               + "; ".join(environment)) + ": every group is compared as a second sample of the same experiment"
    groups = result.groups
    moved = [g for g in groups if not g.identical and not g.failed]
    failed = [g for g in groups if g.failed]
    number_failures = [d for d in result.differences if not d.what.startswith("conclusion ")]
    smallest = min((t.p_adjusted for t in result.tests), default=float("nan"))
    states = {s: sum(c.state == s for c in result.conclusions) for s in STATES}
    lines = [f"# Verify: {rerun_path} against {published_path}", "",
             f"Environment: {env}.", ""]
    if result.partial is not None:
        lines += [f"Partial rerun: {len(result.partial)} training job(s) (variant, series) rerun, "
                  + ", ".join(f"{v} {d}" for v, d in result.partial) + "; every other run is the published one, "
                  "so its group is bit-identical and the conclusions are drawn from the two together.", ""]
    lines += [f"Compared {result.runs} runs present in both tables. Metrics: {', '.join(result.metrics) or 'none'}. "
             f"Settings (exactly): {', '.join(result.settings) or 'none'}. "
             f"Not compared: {', '.join(result.ignored) or 'none'}.",
             f"Only in the rerun (newer than the published study, nothing to compare with): "
             f"{', '.join(result.added) or 'none'}.", "",
             "## Summary", "",
             f"- Groups (variant × series × optimizer): {len(groups)}; bit-identical "
             f"{len(groups) - len(moved) - len(failed)}, moved within sampling {len(moved)}, failed {len(failed)}.",
             f"- Numbers: {len(result.tests)} comparisons as two samples (Student's t, paired by seed or "
             f"not, the standard deviations floored at the metric's resolution), Holm's family-wise α = {ALPHA:g}; "
             f"smallest adjusted p {smallest:.2g}; {len(number_failures)} difference(s) beyond sampling.",
             f"- Conclusions: {len(result.conclusions)} recomputed from both tables; "
             + ", ".join(f"{n} {STATES[s]}" for s, n in states.items()) + ".",
             "- Bit-identical, timing columns aside: " + ("yes." if result.bit_identical else "no."), ""]
    if number_failures:
        lines += [f"## Differences beyond sampling ({len(number_failures)})", ""]
        lines += [f"- {d}" for d in number_failures] + [""]
    if moved:
        header = ["variant", "data seed", "optimizer", "rule", "runs", "status", "metrics moved",
                  "largest move of a mean (metric)", "smallest p (adjusted)"]
        rows = []
        for g in moved:
            tests = [t for t in g.tests if t.differing]
            largest = max(tests, key=lambda t: abs(t.relative), default=None)
            least = min(g.tests, key=lambda t: t.p, default=None)
            rows.append([*g.key, g.rule, str(g.runs), "; ".join(g.notes) or "same", f"{len(tests)} of {len(g.tests)}",
                         f"{_percent(largest.relative)} ({largest.metric})" if largest else "–",
                         f"{least.p:.2g} ({least.p_adjusted:.2g})" if least else "–"])
        lines += [f"## Moved within sampling ({len(moved)} group{'s' * (len(moved) != 1)})", "",
                  "Numbers that differ from the published ones by no more than a new sample of the same experiment "
                  "would: the largest relative move of a mean over seeds, and the group's smallest p (Holm-adjusted "
                  "over all comparisons; a failure needs one below α).", "", markdown(header, rows), ""]
    if result.conclusions:
        listed = [c for c in result.conclusions if c.headline or c.state != "same"]
        lines += ["## Conclusions", "",
                  f"The findings' verdicts, recomputed from each table ({len(listed)} listed; the other "
                  f"{len(result.conclusions) - len(listed)}, differences from a base and which runs diverge, "
                  "are the same unless listed):", "",
                  markdown(["conclusion", "published", "rerun", ""],
                           [[c.what, c.published, c.rerun, STATES[c.state]] for c in listed]), ""]
    if result.differences:
        lines.append(f"verify: FAILED, {len(number_failures)} number(s) and {len(result.changed)} conclusion(s) "
                     "differ beyond sampling.")
    else:
        lines.append(f"verify: OK, every number agrees within sampling (family-wise α = {ALPHA:g}) and no "
                     "conclusion changed.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rnn.verify", description=(
        "Compare a rerun's runs.csv with the published one; exit 1 if a number or a conclusion differs beyond "
        "sampling."))
    parser.add_argument("rerun", metavar="RERUN_RUNS", help=(
        "the rerun's table, e.g. results/tables/runs.csv; with --partial also a folder of training jobs, "
        "e.g. results/runs"))
    parser.add_argument("published", metavar="PUBLISHED_RUNS", help="e.g. results/published/tables/runs.csv")
    parser.add_argument("--published-env", metavar="ENV", help=(
        "the published environment record (results/published/environment.json); when it matches this "
        "machine, deterministic optimizers must agree to the last bit"))
    parser.add_argument("--floors", metavar="ATTRACTOR", help=(
        "the published attractor record (results/published/attractor.json): its floors and ceilings decide "
        "whether each contender stays on the attractor"))
    parser.add_argument("--partial", action="store_true", help=(
        "the rerun covers some jobs (variant x series) only: check them in place of the published ones, "
        "numbers and conclusions, the rest of the study as published"))
    parser.add_argument("--report", metavar="PATH", help="also write the report to PATH (e.g. results/verify.md)")
    args = parser.parse_args(argv)
    try:
        published = read_runs(args.published)
    except io.BadFileError as exc:
        parser.error(f"PUBLISHED_RUNS {args.published}: {exc.problem}")
    try:
        folder = args.partial and Path(args.rerun).is_dir()
        rerun = jobs_table(args.rerun, published) if folder else read_runs(args.rerun)
    except io.BadFileError as exc:
        where = "" if exc.path == Path(args.rerun) else f" ({exc.path})"
        parser.error(f"RERUN_RUNS {args.rerun}{where}: {exc.problem}")
    record = floors = None
    if args.published_env:
        try:
            record = io.load_json(args.published_env)
        except io.BadFileError as exc:
            parser.error(f"--published-env {args.published_env}: {exc.problem}")
        if not isinstance(record, dict):
            parser.error(f"--published-env {args.published_env}: not an environment record (a JSON object)")
    if args.floors:
        try:
            floors = io.load_json(args.floors)
        except io.BadFileError as exc:
            parser.error(f"--floors {args.floors}: {exc.problem}")
        if not isinstance(floors, dict) or not isinstance(floors.get("floors"), list):
            parser.error(f"--floors {args.floors}: lacks the list 'floors' of an attractor record")
        floors = floors["floors"]
    jobs = None
    if args.partial:
        rerun, jobs = merge_partial(rerun, published)
    environment = None if record is None else provenance.differences(record, provenance.environment())
    pool = os.environ.get("PJRT_NPROC")  # a pool other than the study's rounds otherwise (rnn.backends)
    if environment is not None and pool not in (None, str(backends.XLA_POOL_THREADS)):
        environment.append(f"XLA's CPU thread pool {backends.XLA_POOL_THREADS} (published) vs {pool} "
                           "(here, PJRT_NPROC)")
    result = compare(rerun, published, same_environment=environment == [], floors=floors)
    result.partial = jobs
    text = report(result, args.rerun, args.published, environment)
    sys.stdout.write(text)
    if args.report:
        io.save_text(args.report, text)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
