"""The findings' conclusions drawn from one runs table, and how they moved between two (``rnn.verify``'s
second half, docs/verify.md).

``conclusions(runs)`` recomputes the verdicts the findings state, with ``rnn.findings``' own rules; ``state``
says how one moved between the published table and a rerun (same, a tie, fragile, changed);
``compare_conclusions`` pairs them all.
"""

import re
from dataclasses import dataclass

import numpy as np

from .findings import (CONTENDERS, ERROR, QUESTIONS, RNN_MAX_HIDDEN, TIME, _attractor_verdict, _lyapunov_times,
                       _median, _runs_of, _target_verdict, compare_runs, run_values)
from .study import ablation_table, axes_by_base, comparable, contenders, pooled


@dataclass
class Conclusion:
    """One verdict of the findings in both tables, and how it moved (``state``: same, tie, fragile, changed)."""
    what: str
    published: str
    rerun: str
    state: str = "same"
    headline: bool = False  # a choice or a yes/no the findings state in words, listed in the report



def lyapunov_exponent(runs):
    """The generator's Lyapunov exponent per step, as the table records it: valid time in Lyapunov times over
    valid steps (``vpt_lyapunov_test`` / ``vpt_steps_test``), the median over the runs; NaN without them."""
    if not {"vpt_lyapunov_test", "vpt_steps_test"} <= set(runs.columns):
        return float("nan")
    steps, times = (runs[c].to_numpy(dtype=float) for c in ("vpt_steps_test", "vpt_lyapunov_test"))
    ok = np.isfinite(steps) & np.isfinite(times) & (steps > 0)
    return float(np.median(times[ok] / steps[ok])) if ok.any() else float("nan")


STATES = {"same": "the same", "tie": "a tie (another choice the tables cannot tell apart)",
          "fragile": "fragile (a verdict at the edge of its 95% interval moved across it)", "changed": "CHANGED"}
DIVERGENCE = ("no run diverges", "some runs diverge", "every run diverges")  # in order: one step is sampling


@dataclass
class Verdict:
    """A conclusion drawn from one table: a choice (``chosen`` (variant, optimizer) among the runs ``among``,
    by ``metric``) with, where the findings give one, its word against a base (``ci``: "better", "worse" or
    "indistinguishable", ``rnn.findings.compare_runs``: the bootstrap 95% interval of the difference of
    medians); or such a word alone; or a class of ``DIVERGENCE``; or a fact (a target reached, the
    attractor kept, a ranking). ``headline``: listed in the report."""
    text: str
    chosen: tuple = None
    among: object = None
    metric: str = ""
    ci: str = None
    headline: bool = True


def _values(runs, variant, optimizer, metric, seeds=None):
    """The runs' values the findings compare: valid times in Lyapunov times (a diverged run 0), else ``metric``."""
    part = _runs_of(runs, variant, optimizer, seeds)
    return _lyapunov_times(part) if metric == TIME else run_values(part, metric)


def _word(reference, other, lower_is_better):
    """``rnn.findings.compare_runs``' word for ``other`` against ``reference``."""
    return compare_runs(reference, other, lower_is_better)[0]


def conclusions(runs, floors=None, lyapunov=None):
    """{what: Verdict}: the verdicts the findings draw from ``runs``, by rnn.findings' own rules (its
    ``verdict``, ``around_question`` and ``generation_question``): per question and optimizer, the lowest
    median validation MSE and the longest median valid time on validation, each against the baseline
    (medians, the bootstrap interval of their difference); every ablation around a named variant against it;
    the contenders, their ranking by median test valid steps, their targets and whether they stay on the
    attractor (with ``floors``); and per variant x optimizer whether no, some or every run diverges."""
    runs = runs if "base" in runs else runs.assign(base="baseline")  # a table from before named variants
    table = ablation_table(runs)
    every = pooled(table)
    lyapunov = lyapunov_exponent(runs) if lyapunov is None else lyapunov
    out = {}

    def chose(what, variant, optimizer, among, metric, word=None):
        out[what] = Verdict(f"{variant}: {word}" if word else f"{variant}, {optimizer}", (variant, optimizer), among,
                            metric, word)

    _, seeds = comparable(runs, "baseline")
    for question, axes in QUESTIONS:
        for opt in dict.fromkeys(runs.loc[runs["base"] == "baseline", "optimizer"]):
            ref = _runs_of(runs, "baseline", opt, seeds)
            part = runs[runs["axis"].isin(axes) & (runs["optimizer"] == opt) & (runs["base"] == "baseline")]
            part = part[part["data_seed"].isin(seeds)] if "data_seed" in part else part
            if ref.empty or part.empty:
                continue
            medians = {v: _median(run_values(g, ERROR)) for v, g in part.groupby("variant", sort=False)}
            medians = {v: m for v, m in medians.items() if np.isfinite(m)}
            if medians:
                low = min(medians, key=medians.get)
                chose(f"{question} ({opt}): lowest median validation MSE", low, opt, part, ERROR,
                      _word(run_values(ref, ERROR), _values(part, low, opt, ERROR), lower_is_better=True))
            if "vpt_steps_val" in part:
                val = {v: _median(run_values(g, "vpt_steps_val")) for v, g in part.groupby("variant", sort=False)}
                val = {v: m for v, m in val.items() if np.isfinite(m)}
                if val:
                    longest = max(val, key=val.get)
                    chose(f"{question} ({opt}): longest median valid time on validation, its test valid time",
                          longest, opt, part, "vpt_steps_val",
                          _word(_lyapunov_times(ref), _values(part, longest, opt, TIME), lower_is_better=False))
    for name in [b for b in axes_by_base(every) if b != "baseline"]:
        _, seeds = comparable(runs, name)
        part = runs[runs["base"] == name]
        for variant, opt in dict.fromkeys(zip(part["variant"], part["optimizer"])):
            ref = _runs_of(runs, name, opt, seeds)
            if variant == name or ref.empty:
                continue
            for metric, lower in ((TIME, False), ("d_stsp", True)):
                if metric in part:
                    word = _word(_values(runs, name, opt, metric, seeds), _values(runs, variant, opt, metric, seeds),
                                 lower)
                    out[f"around {name}: {variant} ({opt}), {metric}"] = Verdict(word, ci=word, headline=False)
    picks = contenders(table, runs, RNN_MAX_HIDDEN)
    for key, row in picks.items():
        chose(f"contender: {CONTENDERS[key]}", row["variant"], row["optimizer"], runs, "vpt_steps_val")
        if key in ("rnn", "reservoir") and np.isfinite(lyapunov):
            words = _target_verdict(key, row, runs, lyapunov)  # "... **reached**." or "... **not reached**."
            out[f"target of the {CONTENDERS[key]}"] = Verdict(re.search(r"\*\*(.+?)\*\*\.$", words).group(1))
        if floors and "d_stsp_median" in row:
            words = _attractor_verdict(row, floors)  # "stays on the attractor: ..." or "leaves the attractor: ..."
            out[f"on the attractor: {CONTENDERS[key]}"] = Verdict(words.split(":")[0] or "not judged")
    if len(picks) > 1:
        ranked = sorted(picks, key=lambda k: -picks[k]["vpt_steps_test_median"])
        out["contenders ranked by median test valid steps"] = Verdict(" > ".join(ranked))
    for _, row in every.iterrows():
        n, bad = int(row["n"]), int(row["n_diverged"])
        out[f"divergence: {row['variant']} ({row['optimizer']})"] = Verdict(
            DIVERGENCE[0 if bad == 0 else 2 if bad == n else 1], headline=False)
    return out


def _side(word):
    """A verdict's side: +1 better, -1 worse, 0 indistinguishable, None not comparable."""
    if word is None or word == "not comparable":
        return None
    return 0 if word == "indistinguishable" else 1 if word == "better" else -1


def _apart(published, rerun, among):
    """Whether, in ``among`` (the runs one of the two verdicts chose from), the published choice and the
    rerun's differ beyond sampling on the metric they were chosen by: the bootstrap 95% interval of the
    difference of their medians excludes zero (a choice missing there counts as apart)."""
    a, b = (_values(among, *v.chosen, v.metric) for v in (published, rerun))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return not (len(a) and len(b)) or _side(_word(a, b, lower_is_better=True)) != 0


def state(published, rerun):
    """How a conclusion moved: "same"; "tie" (another choice, but one of the two tables cannot tell the two
    apart); "fragile" (a verdict moved between a difference and "indistinguishable", or the divergence
    count between none or every run and some: the published verdict sat within sampling of its boundary);
    or "changed" (a choice replaced by one both tables tell apart from it, a reversal from better to worse,
    a fact that turned)."""
    if published.text == rerun.text:
        return "same"
    if published.chosen and rerun.chosen and published.chosen != rerun.chosen:
        return "changed" if all(_apart(published, rerun, t) for t in (published.among, rerun.among)) else "tie"
    if published.ci is not None and rerun.ci is not None:
        sides = {_side(published.ci), _side(rerun.ci)}
        return "changed" if None in sides or sides == {1, -1} else "fragile"
    if published.text in DIVERGENCE and rerun.text in DIVERGENCE:
        return "fragile" if abs(DIVERGENCE.index(published.text) - DIVERGENCE.index(rerun.text)) == 1 else "changed"
    return "changed"


def compare_conclusions(rerun, published, floors=None):
    """The findings' verdicts from both tables, each with its ``state`` (``Conclusion``); the Lyapunov
    exponent of both is the published table's."""
    lyapunov = lyapunov_exponent(published)
    old, new = conclusions(published, floors, lyapunov), conclusions(rerun, floors, lyapunov)
    none = Verdict("–")
    return [Conclusion(what, old.get(what, none).text, new.get(what, none).text,
                       state(old.get(what, none), new.get(what, none)),
                       old.get(what, none).headline or new.get(what, none).headline)
            for what in dict.fromkeys([*old, *new])]
