"""The findings' conclusions drawn from one runs table, and how they moved between two (``rnn.verify``'s
second half, docs/verify.md).

``conclusions(runs)`` recomputes the verdicts the findings state, with ``rnn.findings``' own rules; ``state``
says how one moved between the published table and a rerun (same, a tie, fragile, changed);
``compare_conclusions`` pairs them all.
"""

import re
from dataclasses import dataclass

import numpy as np

from .findings import (CONTENDERS, QUESTIONS, RNN_MAX_HIDDEN, _attractor_verdict, _target_verdict,
                       compare as ci_verdict)
from .study import ablation_table, axes_by_base, by_validation, comparable, contenders, pooled


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
          "fragile": "fragile (a verdict at its 95%-CI boundary moved across it)", "changed": "CHANGED"}
DIVERGENCE = ("no run diverges", "some runs diverge", "every run diverges")  # in order: one step is sampling


@dataclass
class Verdict:
    """A conclusion drawn from one table: a choice (``chosen`` (variant, optimizer), from the ablation-table
    rows ``among``, by ``metric``) with, where the findings give one, its 95%-CI verdict against a base
    (``ci``: rnn.findings.compare's words); or a CI verdict alone; or a class of ``DIVERGENCE``; or a fact
    (a target reached, the attractor kept, a ranking). ``headline``: listed in the report."""
    text: str
    chosen: tuple = None
    among: object = None
    metric: str = ""
    ci: str = None
    headline: bool = True


def conclusions(runs, floors=None, lyapunov=None):
    """{what: Verdict}: the verdicts the findings draw from ``runs``, by rnn.findings' own rules (its
    ``verdict``, ``around_question`` and ``generation_question``): per question and optimizer, the lowest
    validation MSE and the longest valid prediction on validation, each against the baseline (95% CIs apart
    or not); every ablation around a named variant against it; the contenders, their ranking by median test
    valid steps, their targets and whether they stay on the attractor (with ``floors``); and per variant x
    optimizer whether no, some or every run diverges."""
    table = ablation_table(runs)
    every = pooled(table)
    lyapunov = lyapunov_exponent(runs) if lyapunov is None else lyapunov
    out = {}

    def chose(what, row, among, metric, words=None):
        out[what] = Verdict(f"{row['variant']}: {words}" if words else f"{row['variant']}, {row['optimizer']}",
                            (row["variant"], row["optimizer"]), among, metric, words)

    top, _ = comparable(runs, "baseline")
    for question, axes in QUESTIONS:
        present = [a for a in axes if a in set(top["axis"])]
        for opt in dict.fromkeys(top["optimizer"]):
            base = top[(top["variant"] == "baseline") & (top["optimizer"] == opt)]
            usable = top[top["axis"].isin(present) & (top["optimizer"] == opt) & (top["val_mse_n"] > 0)]
            if base.empty or usable.empty:
                continue
            base = base.iloc[0]
            best = usable.sort_values("val_mse_mean", kind="stable").iloc[0]
            chose(f"{question} ({opt}): lowest validation MSE", best, usable, "val_mse",
                  ci_verdict(base, best, "val_mse"))
            if "vpt_steps_val_mean" in usable:
                longest = by_validation(usable).iloc[0]
                chose(f"{question} ({opt}): longest valid prediction on validation, its test valid steps", longest,
                      usable, "vpt_steps_val", ci_verdict(base, longest, "vpt_steps_test", lower_is_better=False))
    for name in [b for b in axes_by_base(every) if b != "baseline"]:
        part, _ = comparable(runs, name)
        part = part[(part["variant"] == name) | (part["axis"] != "variant")]
        for opt, rows in part.groupby("optimizer", sort=False):
            ref = rows[rows["variant"] == name]
            for _, row in rows[rows["variant"] != name].iterrows() if not ref.empty else ():
                for metric, lower in (("vpt_steps_test", False), ("d_stsp", True)):
                    if f"{metric}_mean" in row:
                        words = ci_verdict(ref.iloc[0], row, metric, lower).replace("baseline", name)
                        what = f"around {name}: {row['variant']} ({opt}), {metric}"
                        out[what] = Verdict(words, ci=words, headline=False)
    picks = contenders(table, runs, RNN_MAX_HIDDEN)
    for key, row in picks.items():
        chose(f"contender: {CONTENDERS[key]}", row, every, "vpt_steps_val")
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


def _side(words):
    """A CI verdict's side: +1 better and apart, -1 worse and apart, 0 overlapping, None not comparable."""
    if words is None or words.startswith("not comparable"):
        return None
    return 0 if "overlap" in words else 1 if words.startswith("better") else -1


def _apart(published, rerun, table):
    """Whether, in ``table`` (one of the two verdicts' ``among``), the published choice and the rerun's
    have 95% CIs apart on the metric they were chosen by (rnn.findings.compare)."""
    keyed = {(r["variant"], r["optimizer"]): r for _, r in table.iterrows()}
    a, b = keyed.get(published.chosen), keyed.get(rerun.chosen)
    return a is None or b is None or _side(ci_verdict(a, b, published.metric)) != 0


def state(published, rerun):
    """How a conclusion moved: "same"; "tie" (another choice, but one of the two tables cannot tell the two
    apart); "fragile" (a 95%-CI verdict moved between apart and overlapping, or the divergence count between
    none or every run and some: the published verdict sat within sampling of its boundary); or "changed"
    (a choice replaced by one both tables tell apart from it, a reversal from better to worse, a
    fact that turned)."""
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
