"""The findings follow the tables: planted tables, and the sentences checked against them. A variant that is
worse is never called better, the worst run quoted is runs.csv's minimum, a difference whose interval covers
zero is called indistinguishable, every sentence with a number names its statistic (mean or median), and a
planted contradiction is caught by the same checks."""

import re

import numpy as np
import pytest

import planted
from rnn import findings, labels, settings, study

COMPARISON = re.compile(r"\b(better|worse|longer|shorter|indistinguishable) (?:than|from) [^()]*\(difference of "
                        r"medians ([-+][\d.e+-]+) [^,]*, 95% bootstrap interval ([-+][\d.e+-]+) to ([-+][\d.e+-]+)\)")


def contradictions(text):
    """Every comparison whose word does not follow its interval: [(sentence part, why)]."""
    found = []
    for m in COMPARISON.finditer(text):
        word, d, lo, hi = m[1], *map(float, m.groups()[1:])
        lower_is_better = "error" in text[max(0, m.start() - 200):m.start()].rsplit("\n", 1)[-1] \
            or "D_stsp" in text[max(0, m.start() - 120):m.start()]
        covers = lo <= 0 <= hi
        if covers != (word == "indistinguishable"):
            found.append((m[0], "the interval decides whether it is indistinguishable"))
        elif not covers:
            better = (hi < 0) == lower_is_better
            if word in ("better", "longer") and not better or word in ("worse", "shorter") and better:
                found.append((m[0], f"a difference from {lo} to {hi} is not '{word}'"))
        if not lo <= d <= hi:
            found.append((m[0], "the difference lies outside its own interval"))
    return found


@pytest.fixture(scope="module")
def document():
    runs = planted.runs()
    table = planted.table(runs)
    figures = {"valid_time": "figures/valid_time.png", "hidden": "figures/ablation_hidden.png"}
    text = findings.findings_markdown(table, runs, dict(settings.BASELINE), planted.LYAPUNOV, figures, planted.FLOORS,
                                      {"valid_time": "Valid time of the contenders: 6 runs each."})
    return runs, table, text


def test_every_comparison_follows_its_interval(document):
    _, _, text = document
    assert len(COMPARISON.findall(text)) >= 8
    assert contradictions(text) == []


def test_a_planted_contradiction_is_caught(document):
    _, _, text = document
    worse = re.search(r"is worse than the tutorial's network \(difference of medians \+", text)
    assert worse, "the planted hidden-30 has a higher one-step error than the baseline: called worse"
    planted_text = text[:worse.start()] + "is better than" + text[worse.start() + len("is worse than"):]
    assert contradictions(planted_text)


def test_a_worse_variant_is_never_called_better(document):
    _, _, text = document
    sgd = next(line for line in text.splitlines() if line.startswith("- **gradient descent**"))
    # hidden-30's one-step error is twice the baseline's; it is not the lowest, and nothing calls it better
    assert "**hidden-30**" not in sgd.split("the longest")[0] or "worse" in sgd
    assert not re.search(r"\*\*hidden-30\*\*[^;]*better", text)


def test_an_overlapping_difference_is_indistinguishable():
    same = [1.0, 1.1, 0.9, 1.05]
    word, d, lo, hi = findings.compare_runs(same, [1.02, 0.95, 1.08, 1.0], lower_is_better=True)
    assert word == "indistinguishable" and lo <= 0 <= hi
    assert findings.compare_runs(same, [2.0, 2.1, 1.9, 2.05], lower_is_better=True)[0] == "worse"
    assert findings.compare_runs(same, [2.0, 2.1, 1.9, 2.05], lower_is_better=False)[0] == "better"


def test_the_worst_run_quoted_is_the_minimum_in_runs(document):
    runs, _, text = document
    recipe = runs[(runs["variant"] == "recipe") & (runs["optimizer"] == "lbfgs")]
    lowest = study.fmt(float(recipe["vpt_lyapunov_test"].min()))
    headline, table = [line.split(" | ") for line in text.splitlines()
                       if line.startswith(f"| {labels.CONTENDERS['rnn']} |")]
    assert headline[5] == table[8] == lowest == "1.96"  # 196 steps × 0.01, as runs.csv holds it


def test_every_number_names_its_statistic(document):
    _, _, text = document
    for line in text.splitlines():
        if line.startswith("- ") and re.search(r"\d", line):
            for clause in line.split(";"):
                if re.search(r"\d\.\d|\d e-|\d+ (Lyapunov|MSE)", clause):
                    assert re.search(r"\b(median|mean|medians|lowest|target)\b", clause, re.I), clause
    for line in text.splitlines():
        if line.startswith("| variant | optimizer | n |"):
            assert all("mean ± 95% CI" in cell for cell in line.split(" | ")[3:]), line


def test_the_ranking_follows_the_medians():
    runs = planted.runs(reservoir_vpt=100)  # now the reservoir generates less long than the recipe
    table = planted.table(runs)
    lines = findings.ranking(findings.contender_rows(table, runs))
    assert lines[0].startswith(f"Longest median valid time: {labels.CONTENDERS['rnn']}, 2.45 Lyapunov times")
    assert lines[1].startswith(f"Best RNN (≤ 60 units) (median 2.45) against {labels.CONTENDERS['reservoir']}")
    assert ": longer than it" in lines[1] and contradictions(
        lines[1].replace("Lyapunov times,", "Lyapunov times,")) == []


def test_the_nearest_reference_is_the_nearest():
    # D_H 0.3: the sine's 0.28 is nearest (noise 0.86, constant 1.0); D_stsp 7: noise's 6.0 on a log scale
    assert findings.nearest_reference(0.3, planted.FLOORS, "d_h") == "sine"
    assert findings.nearest_reference(0.9, planted.FLOORS, "d_h") == "noise"
    assert findings.nearest_reference(7.0, planted.FLOORS, "d_stsp") == "noise"
    assert findings.nearest_reference(0.1, planted.FLOORS, "d_stsp") == "truth"
    row = {"d_stsp_median": 7.0, "d_h_median": 0.3}
    assert findings.attractor_verdict(row, planted.FLOORS).endswith("white noise for D_stsp, a pure sine for D_H)")


def test_the_headline_is_the_block_the_readme_shows(document):
    runs, table, text = document
    block = findings.block_of(text)
    assert text.startswith(block)
    assert block == findings.headline_markdown(table, runs, planted.LYAPUNOV, planted.FLOORS, link="findings.md")
    assert "| the tutorial's recipe | `baseline`, gradient descent, then BFGS | 6 (3 seeds × 2 series) |" in block
    assert "*Valid time of the contenders: 6 runs each.*" in text  # the figure's own caption under it


def test_the_planted_tables_are_what_the_tests_think():
    runs = planted.runs()
    assert np.isclose(runs.loc[runs["variant"] == "recipe", "vpt_lyapunov_test"].min(), 1.96)


def test_a_contender_at_the_horizon_is_called_censored():
    runs = planted.runs()  # every reservoir run reaches the horizon
    lines = findings.ranking(findings.contender_rows(planted.table(runs), runs), horizon=planted.HORIZON)
    assert lines[-1] == (f"Reservoir (echo state network): 100% of its test start points and 6 of 6 runs' medians "
                         f"still valid at the {planted.HORIZON}-step generation horizon (censored): its median valid "
                         "time is a lower bound.")
    assert lines[0] == "Longest median valid time: reservoir (echo state network), ≥ 5 Lyapunov times."
    longer = runs.assign(censored_test=0.0)  # the same valid times scored to a horizon 10 times as long
    assert not any("censored" in line for line in findings.ranking(findings.contender_rows(
        planted.table(longer), longer), horizon=10 * planted.HORIZON))


def test_a_censored_median_reads_as_a_lower_bound_wherever_it_occurs():
    runs = planted.runs()  # the reservoir's runs all reach the horizon; the recipe's none
    table = planted.table(runs)
    text = findings.findings_markdown(table, runs, dict(settings.BASELINE), planted.LYAPUNOV, {}, planted.FLOORS,
                                      horizon=planted.HORIZON)
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith(f"| {labels.CONTENDERS['reservoir']} |")]
    assert len(rows) == 2 and rows[0][3] == rows[1][4] == "≥ 5"  # the headline's median and the question's table
    assert rows[0][6] == rows[1][6] == "100%"  # the share of test start points censored
    recipe = next(line for line in text.splitlines() if line.startswith(f"| {labels.CONTENDERS['rnn']} |"))
    assert "≥" not in recipe and "| 0% |" in recipe
    per_series = next(line for line in text.splitlines() if line.startswith("| 0 | "))
    assert "**≥ 500** (≥ 5)" in per_series and "**9** (0.09)" in per_series
    # a median is a lower bound once its middle run is censored, not before
    part = runs[(runs["variant"] == "recipe")]
    assert not findings.lower_bound(part, 270) and findings.lower_bound(part, 250)
    assert not findings.lower_bound(part, None)


def test_each_models_exponent_is_set_beside_the_datas():
    runs = planted.runs()
    record = {"lyapunov_per_sample": 0.01, "per_chain": [0.0098, 0.0102, 0.0099, 0.0101], "chains": 4}
    value, lo, hi = study.exponent_interval(record)
    assert value == 0.01 and lo < 0.01 < hi and hi - lo == pytest.approx(2 * 3.182446 * np.std(record["per_chain"],
                                                                                             ddof=1) / 2, rel=1e-5)
    text = findings.exponent_question(planted.table(runs), runs, record)
    assert text.startswith(f"The data's largest Lyapunov exponent: 0.01 per step (95% CI {study.fmt(lo)} to "
                           f"{study.fmt(hi)}, 4 chains")
    rows = {r[1]: r for r in (line.split(" | ") for line in text.splitlines()[2:]) if len(r) > 5}
    reservoir = rows["reservoir, ridge read-out"]
    assert reservoir[2] == "6" and reservoir[6] == reservoir[7] == "6 of 6"  # 0.0099-0.0101: chaotic, inside
    recipe = rows["recipe, L-BFGS"]
    assert recipe[3] == study.fmt(float(np.median(0.007 + 0.0005 * np.arange(6))))
    assert recipe[6] == "6 of 6" and recipe[7] == "0 of 6"  # 0.007-0.0095: chaotic, below the data's interval
    around = rows["recipe/hidden-30, L-BFGS"]
    assert around[0] == "| around recipe" and around[6] == "0 of 3"  # exponents 0, -0.01, -0.02: none chaotic
    assert rows["recipe/skip-true, L-BFGS"][5] == "-0.05 to -0.05"  # its one run that trained; two diverged


def test_the_reservoirs_error_at_step_84_is_named_as_jaegers_yardstick(document):
    _, _, text = document
    line = next(line for line in text.splitlines() if "free-running step 84" in line)
    assert "(Jaeger's NRMSE84 on the study's start points and coordinates), median 0.7 over its runs" in line
    head = next(line for line in text.splitlines() if line.startswith("|  | variant | optimizer |"))
    assert "NRMSE at step 84 (Jaeger's)" in head and "NRMSE over steps 1-84" in head


def test_the_error_a_target_allows_and_the_time_an_error_allows_invert_each_other():
    lam, target = 0.006, 3.5
    e = findings.error_allowance(lam, target)
    assert e == pytest.approx(0.5 * np.exp(84 * lam - 3.5))
    assert findings.allowed_steps(e, lam) == pytest.approx(target / lam)  # 3.5 Lyapunov times, in steps
    assert findings.allowed_steps(e / np.e, lam) == pytest.approx((target + 1) / lam)  # e times smaller: one more
    assert np.isnan(findings.allowed_steps(0.5, lam)) and np.isnan(findings.allowed_steps(0.0, lam))
    # runs whose valid times are half what the data's exponent allows need the error that doubles the target
    assert findings.needed_error(lam, target, 0.5) == pytest.approx(findings.error_allowance(lam, 2 * target))


def _limits_runs():
    """The planted runs with errors at step 84 set by hand: the recipe's runs reach exactly what their error
    allows (growth 1) on series 0, the reservoir's half of it."""
    runs = planted.runs(recipe_vpt=(240, 260, 250, 230, 196, 270))
    lam = planted.LYAPUNOV
    recipe = runs["variant"] == "recipe"
    # an error at step 84 from which each run's own valid time is exactly what the exponent allows
    runs.loc[recipe, "nrmse_at84_test"] = 0.5 * np.exp(-(runs.loc[recipe, "vpt_steps_test"] - 84) * lam)
    res = runs["variant"] == "reservoir"
    runs.loc[res, "nrmse_at84_test"] = 0.5 * np.exp(-(2 * runs.loc[res, "vpt_steps_test"] - 84) * lam)
    around = runs["base"].eq("recipe") & ~recipe
    runs.loc[around, "nrmse_at84_test"] = 0.3
    return runs


def test_how_far_the_best_rnn_got_is_measured_from_its_runs():
    runs = _limits_runs()
    table = planted.table(runs)
    text = findings.limits_question(table, runs, planted.LYAPUNOV, ceiling=250.0,
                                    exponent={"lyapunov_per_sample": 0.01, "per_chain": [0.0099, 0.0101]})
    rows = {r[0].strip("| "): r for r in (line.split(" | ") for line in text.splitlines()) if len(r) > 5}
    recipe = rows[f"{labels.CONTENDERS['rnn']}: recipe"]
    lt = runs.loc[runs["variant"] == "recipe", "vpt_lyapunov_test"]
    assert recipe[1] == "6" and recipe[2] == study.fmt(float(np.median(lt))) and recipe[3] == "1.96"
    assert recipe[4] == "0 of 6"  # no run reaches 3.5 Lyapunov times (350 steps)
    assert recipe[7] == "1"  # each run's valid time is what its error allows: growth 1
    assert rows[f"{labels.CONTENDERS['reservoir']}: reservoir"][7] == "0.5"
    # the base of the rows around it, on the series they ran on, then those rows, longest median first
    names = list(rows)
    assert names.index("recipe on data seed 0 (the base of the rows below)") < names.index("recipe, hidden units 30")
    assert rows["recipe on data seed 0 (the base of the rows below)"][1] == "3"
    allowance = findings.error_allowance(planted.LYAPUNOV, 3.5)
    assert f"an error at step 84 of at most {study.fmt(allowance)} standard deviations" in text
    below = int(np.sum(runs.loc[runs["variant"] == "recipe", "nrmse_at84_test"] <= allowance))
    assert f"({below} of 6 runs at or below)" in text
    assert "its valid times are a median 1 of what its step-84 errors allow" in text
    assert "**recipe on data seed 0 (the base of the rows below)**" in text  # the furthest: hidden-30 is shorter
    assert "its lowest run 1.96, its highest 2.7 Lyapunov times (0 of 6 reach 3.5)" in text
    val = runs.loc[runs["variant"] == "recipe", "vpt_steps_val"]
    assert f"a median valid time of at most 250 steps (2.5 Lyapunov times); {int(np.sum(val >= 250))} of 6" in text


def test_the_limits_need_a_generating_rnn_and_its_errors():
    runs = _limits_runs()
    assert findings.limits_question(planted.table(runs), runs.drop(columns="nrmse_at84_test"), planted.LYAPUNOV) == ""
    assert findings.limits_question(planted.table(runs), runs, float("nan")) == ""


def test_the_validation_ceiling_is_what_a_model_valid_throughout_scores():
    from rnn.experiment import starts_in_validation

    assert findings.validation_ceiling(20, 500) == 380.0  # the default segments: 2.25 Lyapunov times at 169
    for spacing, validation in ((20, 500), (7, 60), (25, 1000), (10, 41)):
        starts = starts_in_validation({"spacing": spacing}, 1500, validation)
        assert starts[0] == 1500 and starts[-1] <= 1500 + validation // 2
        assert findings.validation_ceiling(spacing, validation) == float(np.median(1500 + validation - starts))
