"""rnn.conclusions draws the findings' verdicts by the findings' own rules (medians, the bootstrap interval of
their difference) and says how each moved between two tables: the same, a tie, fragile or changed."""

import re

import numpy as np

import planted
from rnn import conclusions, findings, settings


def _verdicts(runs):
    return conclusions.conclusions(runs, planted.FLOORS, planted.LYAPUNOV)


def test_each_choice_and_word_is_the_one_the_findings_print():
    runs = planted.runs()
    text = findings.findings_markdown(planted.table(runs), runs, dict(settings.BASELINE), planted.LYAPUNOV, {},
                                      planted.FLOORS)
    verdicts = _verdicts(runs)
    for opt, name in (("sgd", "gradient descent"), ("sgd+bfgs", "gradient descent, then BFGS")):
        sentence = next(line for line in text.splitlines()
                        if line.startswith(f"- **{name}**") and "hidden" in line)  # the hidden units' question
        chosen = verdicts[f"The number of hidden units ({opt}): lowest median validation MSE"]
        low, word = chosen.text.split(": ")
        assert re.search(rf"the lowest median one-step error, \*\*{re.escape(low)}\*\* [^,]*, is {word} ", sentence)
        longest = verdicts[f"The number of hidden units ({opt}): longest median valid time on validation, its test "
                           "valid time"]
        variant, word = longest.text.split(": ")
        assert f"the longest median valid time on the validation start points is **{variant}**'s" in sentence
        assert re.search(rf"Lyapunov times, is {word} ", sentence)
    around = verdicts["around recipe: recipe/hidden-30 (lbfgs), vpt_lyapunov_test"]
    assert f"**recipe/hidden-30** (L-BFGS): median valid time 0.7 Lyapunov times, {around.text} " in text


def test_a_choice_within_sampling_of_the_published_one_is_a_tie_and_one_beyond_it_changed():
    runs = planted.runs()
    what = "The number of hidden units (sgd): lowest median validation MSE"
    assert _verdicts(runs)[what].text.startswith("hidden-5:")  # 1.5 × the baseline's error; hidden-30's 2e-3
    close = planted.runs(hidden30_mse=1.29e-3 - 1e-6)  # now hidden-30's median is lower, by less than the seeds' spread
    close.loc[(close["variant"] == "hidden-30") & (close["optimizer"] == "sgd"), "val_mse"] += [-4e-4, 0.0, 4e-4]
    moved = _verdicts(close)[what]
    assert moved.text.startswith("hidden-30:")
    assert conclusions.state(_verdicts(runs)[what], moved) == "tie"
    far = planted.runs(hidden30_mse=1e-5)  # far below every other: both tables tell the two apart
    assert conclusions.state(_verdicts(runs)[what], _verdicts(far)[what]) == "changed"


def test_a_verdict_that_crosses_its_interval_is_fragile_and_one_that_reverses_changed():
    better = conclusions.Verdict("better", ci="better")
    same = conclusions.Verdict("indistinguishable", ci="indistinguishable")
    worse = conclusions.Verdict("worse", ci="worse")
    assert conclusions.state(better, better) == "same"
    assert conclusions.state(better, same) == conclusions.state(same, worse) == "fragile"
    assert conclusions.state(better, worse) == "changed"
    runs = planted.runs()
    what = "around recipe: recipe/hidden-30 (lbfgs), vpt_lyapunov_test"
    assert _verdicts(runs)[what].text == "worse"  # 60-80 steps against the recipe's 230-260
    up = runs.copy()
    up.loc[up["variant"] == "recipe/hidden-30", ["vpt_steps_test", "vpt_lyapunov_test"]] = [[500, 5.0]]
    assert _verdicts(up)[what].text == "better"
    assert conclusions.state(_verdicts(runs)[what], _verdicts(up)[what]) == "changed"


def test_a_table_without_named_variants_is_read_as_the_baseline_s():
    runs = planted.runs()
    plain = runs[runs["base"] == "baseline"].drop(columns="base")
    verdicts = conclusions.conclusions(plain, lyapunov=planted.LYAPUNOV)
    assert "The number of hidden units (sgd): lowest median validation MSE" in verdicts
    assert not any(k.startswith("around") for k in verdicts)
    assert np.isfinite(conclusions.lyapunov_exponent(runs))
