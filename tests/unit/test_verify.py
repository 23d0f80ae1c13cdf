"""rnn.verify: what passes as sampling, what fails, and that each failure is named.

Synthetic runs tables for the rules; for the whole study, a real rerun that differs from the published one
only in rounding (tests/data: the study published with XLA's CPU thread pool at 1 thread, and the same
study, code and machine with a pool of 2 threads, which changes last bits and, through BFGS and the closed
loop, whole optima; README "Checking a rerun"), with planted changes.
"""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnn import provenance, verify

SEEDS = range(5)
# The baseline's BFGS validation MSE as published: mean 7.94e-05 ± 2.78e-06 (95% CI over five seeds).
BFGS_VAL = 7.94e-5 + np.array([-3, -1, 0, 1, 3]) * 1e-6
DATA = Path(__file__).parents[1] / "data"


def runs_table():
    """A runs.csv as the aggregate rule writes it: two variants on one series, SGD and BFGS, five seeds."""
    rng = np.random.default_rng(0)
    rows = []
    for variant, axis, value, hidden in (("baseline", "baseline", np.nan, 15), ("hidden-5", "hidden", 5.0, 5)):
        for optimizer in ("sgd", "bfgs"):
            for seed in SEEDS:
                val = BFGS_VAL[seed] if optimizer == "bfgs" else 8.7e-4 * (1 + 0.01 * rng.standard_normal())
                if variant != "baseline":
                    val *= 1.5
                steps = int(rng.integers(3, 7))
                rows.append({"variant": variant, "data_seed": 0, "axis": axis, "value": value, "optimizer": optimizer, "seed": seed,
                             "backend": "jax", "status": "ok", "train_mse": val * 0.98, "val_mse": val,
                             "nrmse_84": 0.9 + 0.05 * rng.standard_normal(), "vpt_steps": steps,
                             "vpt_lyapunov": steps * 0.0051, "hidden": hidden, "train_seconds": rng.uniform(1, 2),
                             "bfgs_iterations": 100.0 if optimizer == "bfgs" else np.nan,
                             "bfgs_message": "Maximum number of iterations" if optimizer == "bfgs" else np.nan})
    return pd.DataFrame(rows)


def at(frame, variant, optimizer, seed=None):
    mask = (frame["variant"] == variant) & (frame["optimizer"] == optimizer)
    return mask & (frame["seed"] == seed) if seed is not None else mask


def named(result):
    return [str(d) for d in result.differences]


def moved(result):
    return {g.key for g in result.groups if not g.identical and not g.failed}


def test_identical_tables_pass_and_are_bit_identical():
    runs = runs_table()
    result = verify.compare(runs.copy(), runs)
    assert result.ok and result.bit_identical and result.runs == len(runs)
    assert len(result.groups) == 4 and all(g.identical for g in result.groups)
    text = verify.report(result)
    assert "- Groups (variant × series × optimizer): 4; bit-identical 4, moved within sampling 0, failed 0." in text
    assert "Bit-identical, timing columns aside: yes." in text and "## Moved within sampling" not in text
    assert text.rstrip().endswith("verify: OK, every number agrees within sampling (family-wise α = 0.01) and no "
                                  "conclusion changed.")


def test_columns_are_sorted_into_metrics_settings_and_not_compared():
    metrics, settings, ignored = verify.column_roles(runs_table(), runs_table())
    assert metrics == ["train_mse", "val_mse", "nrmse_84", "vpt_steps", "vpt_lyapunov"]
    assert settings == ["axis", "value", "backend", "hidden"]  # hidden: constant within every variant
    assert ignored == ["train_seconds", "bfgs_iterations", "bfgs_message"]


def test_timing_and_iteration_counts_are_not_compared():
    runs = runs_table()
    rerun = runs.assign(train_seconds=runs["train_seconds"] * 3, bfgs_iterations=runs["bfgs_iterations"] - 1)
    result = verify.compare(rerun, runs)
    assert result.ok and not result.bit_identical  # bfgs_iterations differ: not a timing column
    assert not moved(result)


def test_bfgs_seeds_landing_elsewhere_are_moves_within_sampling_with_their_size():
    runs = runs_table()
    rerun = runs.copy()
    rerun.loc[at(rerun, "baseline", "bfgs", 2), "val_mse"] *= 1.02  # one seed lands elsewhere: mean +0.4%
    rerun.loc[at(rerun, "baseline", "bfgs"), "vpt_steps"] = rerun.loc[at(rerun, "baseline", "bfgs"), "vpt_steps"][::-1].to_numpy()
    result = verify.compare(rerun, runs)
    assert result.ok, named(result)
    assert moved(result) == {("baseline", 0, "bfgs")}
    text = verify.report(result)
    assert "| baseline | 0 | bfgs | second sample | 5 | same | 2 of 5 | +0.4% (val_mse) |" in text
    assert "- Groups (variant × series × optimizer): 4; bit-identical 3, moved within sampling 1, failed 0." in text


@pytest.mark.parametrize("optimizer", ["sgd", "bfgs"])
@pytest.mark.parametrize("moved_by", [1.10, 0.90])
def test_a_one_step_mean_moved_by_ten_percent_fails_naming_the_metric(optimizer, moved_by):
    """The rerun is the published table with its last bits moved; the published baseline's validation MSE
    is 10% off on every seed: a change no resampling of a one-step fit makes."""
    runs = runs_table()
    rerun = runs.assign(train_mse=runs["train_mse"] * (1 + 1e-15), val_mse=runs["val_mse"] * (1 - 1e-15))
    published = runs.copy()
    published.loc[at(published, "baseline", optimizer), "val_mse"] *= moved_by
    result = verify.compare(rerun, published)
    assert [(d.group, d.what) for d in result.differences] == [(("baseline", 0, optimizer), "val_mse")], named(result)
    assert f"baseline, data seed 0, {optimizer}, val_mse: mean " in named(result)[0]
    assert f"({100 * (1 / moved_by - 1):+.3g}%)" in named(result)[0] and "Holm-adjusted p = " in named(result)[0]
    text = verify.report(result)
    assert "verify: FAILED, 1 number(s) and 0 conclusion(s) differ beyond sampling." in text
    assert f"## Differences beyond sampling (1)\n\n- baseline, data seed 0, {optimizer}, val_mse: " in text
    assert len(moved(result)) == 3  # the last bits, elsewhere: moved within sampling, not failures


def test_seeds_that_all_agree_give_no_zero_width_interval():
    """The issue's "inf": published seeds that agree (a valid time of 3 steps on every seed) and a rerun
    where one, then every, seed moved by the metric's step: sampling, floored at the step."""
    runs = runs_table()
    runs.loc[at(runs, "hidden-5", "bfgs"), "vpt_steps"] = 3
    rerun = runs.copy()
    rerun.loc[at(rerun, "hidden-5", "bfgs", 1), "vpt_steps"] = 4
    assert verify.compare(rerun, runs).ok
    rerun.loc[at(rerun, "hidden-5", "bfgs"), "vpt_steps"] = 4  # every seed one step on
    result = verify.compare(rerun, runs)
    assert result.ok, named(result)
    test = next(t for t in result.tests if t.group == ("hidden-5", 0, "bfgs") and t.metric == "vpt_steps")
    assert test.floor == 1.0 and test.half_width > 0 and test.delta == 1.0
    rerun.loc[at(rerun, "hidden-5", "bfgs"), "vpt_steps"] = 30  # every seed 27 steps on: no sampling
    assert [d.what for d in verify.compare(rerun, runs).differences] == ["vpt_steps"]


def test_the_resolution_floor_and_the_grid_of_a_metric():
    assert verify.quantum([3.0, 3.5, 5.0, 7.5, np.nan]) == 0.5
    assert verify.quantum(np.array([3.0, 3.5, 5.0]) * 0.0051) == pytest.approx(0.5 * 0.0051)
    assert verify.quantum([0.1, 0.31, 0.5]) == 0.0  # continuous
    floor = verify.resolution_floor(np.array([2.0, 2.0]), np.array([2.0, 2.0]), "val_mse")
    assert floor == verify.RESOLUTION_RTOL * 2.0
    assert verify.resolution_floor(np.array([0.1]), np.array([0.1]), "d_stsp") == verify.LONG_RUN_SD["d_stsp"]
    assert verify.two_sample_test([1.0, 2.0], [1.0, 2.0], 0.1) == (0.0, 0.0, 1.0)
    delta, half, p = verify.two_sample_test([1.0] * 5, [1.1] * 5, 0.1)  # every pair moved by the floor itself
    assert delta == pytest.approx(0.1) and half > 0.1 and 0.1 < p < 0.25


def test_holm_adjusts_step_down():
    assert verify.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert verify.holm([]).size == 0


@pytest.mark.parametrize("law", ["normal", "heavy tails", "whole steps"])
def test_the_two_sample_test_is_calibrated_under_sampling(law):
    """Under sampling the two samples share one law: the p-values are uniform or larger, so Holm over all
    comparisons keeps the family-wise false alarms at most ALPHA."""
    rng = np.random.default_rng(27)
    draws = {"normal": lambda: rng.normal(1.0, 0.1, (2, 5)), "heavy tails": lambda: 1.0 + rng.standard_t(2, (2, 5)),
             "whole steps": lambda: rng.integers(3, 6, (2, 5)).astype(float)}[law]
    p = np.array([verify.two_sample_test(*draws(), 0.0)[2] for _ in range(3000)])
    for level in (0.01, 0.05, 0.2):
        assert np.mean(p < level) <= level * 1.3 + 0.003, (level, np.mean(p < level))


def test_last_bits_move_within_sampling_elsewhere_and_fail_on_the_published_machine():
    runs = runs_table()
    published = runs.copy()
    published.loc[at(published, "baseline", "sgd", 0), "train_mse"] *= 1 + 1e-13
    result = verify.compare(runs, published)
    assert result.ok and moved(result) == {("baseline", 0, "sgd")}
    assert "| baseline | 0 | sgd | second sample | 5 | same | 1 of 5 | -2e-12% (train_mse) |" in verify.report(result)
    same = verify.compare(runs, published, same_environment=True)
    assert named(same) == [
        f"baseline, data seed 0, sgd, seed 0, train_mse: {runs.loc[0, 'train_mse']:.17g} here against "
        f"{published.loc[0, 'train_mse']:.17g} published (must agree exactly)"]
    assert [g.rule for g in same.groups] == ["bit for bit", "second sample", "bit for bit", "second sample"]


def test_closed_loop_sgd_is_a_sample_elsewhere_and_bit_for_bit_on_the_published_machine():
    published = runs_table().assign(rollout_steps=1)
    published.loc[published["variant"] == "hidden-5", "rollout_steps"] = 8
    rerun = published.copy()
    rerun.loc[at(rerun, "hidden-5", "sgd"), "val_mse"] *= 1 + 1e-3 * np.array([1, -1, 1, -1, 0.5])
    assert verify.compare(rerun, published).ok
    assert "| hidden-5 | 0 | sgd | second sample (closed loop) | 5 |" in verify.report(verify.compare(rerun, published))
    same = verify.compare(rerun, published, same_environment=True)
    assert {(d.group, d.what) for d in same.differences} == {(("hidden-5", 0, "sgd"), "val_mse")}
    rerun.loc[at(rerun, "hidden-5", "sgd"), "val_mse"] *= 1.2  # a real change still fails elsewhere
    assert [(d.group, d.what) for d in verify.compare(rerun, published).differences] == [(("hidden-5", 0, "sgd"), "val_mse")]


def with_long_runs(runs):
    """The table with the long-run measures: each run's D_stsp and D_H near the study's floors."""
    rng = np.random.default_rng(1)
    return runs.assign(d_stsp=0.1 + 0.02 * rng.standard_normal(len(runs)),
                       d_h=0.01 + 0.002 * rng.standard_normal(len(runs)))


def test_long_runs_on_another_machine_are_another_sample_of_the_attractor():
    published = with_long_runs(runs_table())
    rerun = published.copy()
    every = at(rerun, "baseline", "sgd")
    rerun.loc[every, "d_stsp"] += 0.03  # every run moved by a new sample's spread, the same way
    rerun.loc[every, "d_h"] += 0.007
    assert verify.compare(rerun, published).ok
    rerun.loc[every, "d_stsp"] = 3.0  # a model that left the attractor
    result = verify.compare(rerun, published)
    assert [(d.group, d.what) for d in result.differences] == [(("baseline", 0, "sgd"), "d_stsp")]


def test_a_changed_status_fails_on_the_published_machine_and_is_sampling_elsewhere():
    runs = runs_table()
    rerun = runs.copy()
    row = at(rerun, "hidden-5", "bfgs", 4)
    rerun.loc[row, "status"] = "unstable"
    rerun.loc[row, ["nrmse_84", "vpt_steps", "vpt_lyapunov"]] = np.nan
    same = verify.compare(rerun, runs, same_environment=True)
    assert named(same) == ["hidden-5, data seed 0, bfgs, seed 4, status: 'unstable' here against 'ok' published"]
    elsewhere = verify.compare(rerun, runs)
    assert elsewhere.ok and moved(elsewhere) == {("hidden-5", 0, "bfgs")}
    assert "seed 4: unstable here, ok published; nrmse_84 finite in 4 runs here against 5 published" in (
        verify.report(elsewhere))
    rerun.loc[at(rerun, "hidden-5", "bfgs"), "nrmse_84"] = np.nan  # a metric that vanished is no sampling
    assert "hidden-5, data seed 0, bfgs, nrmse_84: finite in 0 runs here against 5 published" in named(
        verify.compare(rerun, runs))


def test_missing_and_extra_variants_optimizers_and_seeds_are_differences():
    runs = runs_table()
    rerun = runs[~at(runs, "hidden-5", "bfgs", 2) & (runs["variant"] != "baseline") | at(runs, "baseline", "sgd")]
    extra = runs[at(runs, "hidden-5", "sgd")].assign(optimizer="lbfgs")
    rerun = pd.concat([rerun, extra, runs[at(runs, "hidden-5", "sgd", 0)].assign(seed=7)], ignore_index=True)
    result = verify.compare(rerun, runs)
    assert named(result)[:4] == ["baseline, data seed 0, bfgs, optimizer: missing from the rerun",
                                 "hidden-5, data seed 0, lbfgs, optimizer: only in the rerun",
                                 "hidden-5, data seed 0, bfgs, seed 2, run: missing from the rerun",
                                 "hidden-5, data seed 0, sgd, seed 7, run: only in the rerun"]
    only_variant = verify.compare(runs[runs["variant"] == "baseline"], runs)
    assert named(only_variant)[0] == "hidden-5, variant: missing from the rerun"
    other_series = pd.concat([runs, runs[runs["variant"] == "baseline"].assign(data_seed=1)], ignore_index=True)
    assert named(verify.compare(runs, other_series))[0] == "baseline, data seed 1, series: missing from the rerun"


def test_each_series_is_compared_on_its_own():
    one = runs_table()
    two = pd.concat([one, one.assign(data_seed=3)], ignore_index=True)
    published = two.copy()
    published.loc[at(published, "baseline", "bfgs") & (published["data_seed"] == 3), "val_mse"] *= 1.1
    result = verify.compare(two, published)
    assert [(d.group, d.what) for d in result.differences] == [(("baseline", 3, "bfgs"), "val_mse")]


def test_a_changed_setting_or_missing_metric_column_is_a_difference():
    runs = runs_table()
    rerun = runs.assign(hidden=np.where(runs["variant"] == "hidden-5", 6, 15)).drop(columns="nrmse_84")
    result = verify.compare(rerun, runs)
    assert "nrmse_84: column missing from the rerun" in named(result)
    assert sum(d.what == "hidden" for d in result.differences) == 10  # each run of hidden-5
    assert "hidden-5, data seed 0, sgd, seed 0, hidden: 6 here against 5 published" in named(result)


def test_a_measure_newer_than_the_publication_is_listed_not_compared():
    runs = runs_table()
    rerun = runs.assign(lyapunov_model=0.006)
    result = verify.compare(rerun, runs)
    assert result.ok and result.bit_identical and result.added == ["lyapunov_model"]
    assert "lyapunov_model" not in result.metrics
    assert "Only in the rerun (newer than the published study, nothing to compare with): lyapunov_model." \
        in verify.report(result)


# --- the whole study: a rerun that differs in rounding only, and planted changes -----------------

@pytest.fixture(scope="module")
def study():
    """(published, rerun, floors): the study as published with XLA's pool at 1 thread, rerun with 2."""
    read = lambda name: pd.read_csv(DATA / name)  # noqa: E731
    return (read("verify-xla-pool-1.csv.gz"), read("verify-xla-pool-2.csv.gz"),
            json.loads((DATA / "verify-floors.json").read_text())["floors"])


@pytest.fixture(scope="module")
def rounding(study):
    published, rerun, floors = study
    return verify.compare(rerun, published, floors=floors)


def test_a_rerun_that_differs_in_rounding_passes_and_says_what_moved(rounding):
    result = rounding
    assert result.ok, named(result)[:5]
    assert len(result.groups) == 110 and len(result.tests) == 1908
    assert min(t.p_adjusted for t in result.tests) == 1.0
    identical = {g.key for g in result.groups if g.identical}  # every run diverged, or a ridge readout
    assert identical == {*((f"init_scale_rec-{s}", 0, o) for s in ("0.5", "1.0") for o in ("sgd", "sgd+bfgs")),
                         *(("reservoir-400", d, "ridge") for d in range(3)), ("closed-loop-60/init_scale_rec-0.3", 0, "lbfgs")}
    one_step_sgd = [t for g in result.groups if g.key[2] == "sgd" and g.rule == "second sample" for t in g.tests]
    assert max(abs(t.relative) for t in one_step_sgd) < 1e-3  # init_scale_rec-0.2's seed 4 moved most
    states = {c.what: c.state for c in result.conclusions}
    assert "changed" not in states.values()
    for what in ("contender: best RNN (≤ 60 units)", "contenders ranked by median test valid steps",
                 "target of the best RNN (≤ 60 units)", "on the attractor: reservoir (echo state network)"):
        assert states[what] == "same"
    text = verify.report(result)
    assert "## Moved within sampling (102 groups)" in text and "| rollout_steps-8 | 0 | sgd+bfgs | second sample" in text
    assert "| contenders ranked by median test valid steps | reservoir > rnn > tutorial | reservoir > rnn > tutorial | the same |" in text
    assert text.rstrip().endswith("verify: OK, every number agrees within sampling (family-wise α = 0.01) and no "
                                  "conclusion changed.")


@pytest.mark.parametrize("optimizer", ["sgd", "bfgs"])
def test_a_planted_ten_percent_change_of_a_one_step_baseline_mean_fails_naming_it(study, optimizer):
    published, rerun, floors = study
    rerun = rerun.copy()
    rerun.loc[at(rerun, "baseline", optimizer) & (rerun["data_seed"] == 0), "val_mse"] *= 1.1
    result = verify.compare(rerun, published, floors=floors)
    numbers = [d for d in result.differences if not d.what.startswith("conclusion")]
    assert [(d.group, d.what) for d in numbers] == [(("baseline", 0, optimizer), "val_mse")]
    assert re.search(r"published \(\+(9\.9\d|10)%\)", str(numbers[0])), str(numbers[0])
    assert "verify: FAILED, 1 number(s)" in verify.report(result)


def test_a_planted_swap_of_two_contenders_fails_naming_the_conclusions(study):
    """The best RNN's runs and the reservoir's, swapped: metrics far beyond sampling, and the ranking, the
    targets and the RNN's place change."""
    published, rerun, floors = study
    metrics = [c for c in verify.column_roles(rerun, published)[0]]
    rnn, reservoir = at(rerun, "closed-loop-60", "lbfgs"), at(rerun, "reservoir-400", "ridge")
    swapped = rerun.copy()
    swapped.loc[rnn, metrics], swapped.loc[reservoir, metrics] = (rerun.loc[reservoir, metrics].to_numpy(),
                                                                  rerun.loc[rnn, metrics].to_numpy())
    result = verify.compare(swapped, published, floors=floors)
    changed = {c.what: (c.published, c.rerun) for c in result.changed}
    assert changed["contenders ranked by median test valid steps"] == ("reservoir > rnn > tutorial",
                                                                      "rnn > reservoir > tutorial")
    assert changed["target of the reservoir (echo state network)"] == ("reached", "not reached")
    assert "conclusion 'contenders ranked by median test valid steps'" in {d.what for d in result.differences}
    assert {("closed-loop-60", d, "lbfgs") for d in range(3)} | {("reservoir-400", d, "ridge") for d in range(3)} == {
        g.key for g in result.groups if g.failed}
    text = verify.report(result)
    assert "| contenders ranked by median test valid steps | reservoir > rnn > tutorial | rnn > reservoir > tutorial | CHANGED |" in text
    assert "\n- closed-loop-60, data seed 0, lbfgs, vpt_steps_test: mean " in text


# --- the command line ----------------------------------------------------------------------------

def test_cli_exit_status_report_and_environment(tmp_path, capsys):
    runs = runs_table()
    rerun, published, env = tmp_path / "rerun.csv", tmp_path / "published.csv", tmp_path / "environment.json"
    runs.to_csv(rerun, index=False)
    runs.to_csv(published, index=False)
    env.write_text(json.dumps(provenance.environment()))
    saved = tmp_path / "verify.md"
    assert verify.main([str(rerun), str(published), "--published-env", str(env), "--report", str(saved)]) == 0
    out = capsys.readouterr().out
    assert saved.read_text() == out
    assert "Environment: the same software versions and CPU as the published record" in out and "verify: OK" in out

    env.write_text(json.dumps({**provenance.environment(), "cpu": "Another CPU"}))
    runs.assign(val_mse=runs["val_mse"] * 1.1).to_csv(published, index=False)
    assert verify.main([str(rerun), str(published), "--published-env", str(env)]) == 1
    out = capsys.readouterr().out
    assert "differs from the published record: cpu Another CPU (published) vs " in out
    assert "- baseline, data seed 0, bfgs, val_mse: mean " in out and "verify: FAILED" in out


def test_cli_takes_a_changed_xla_pool_for_another_machine(tmp_path, capsys, monkeypatch):
    """PJRT_NPROC=2 reruns the study with other last bits on the published machine (rnn.backends): verify
    must not ask for bit-identity then."""
    runs = runs_table()
    rerun, published, env = tmp_path / "rerun.csv", tmp_path / "published.csv", tmp_path / "environment.json"
    runs.to_csv(rerun, index=False)
    runs.to_csv(published, index=False)
    env.write_text(json.dumps(provenance.environment()))
    monkeypatch.setenv("PJRT_NPROC", "2")
    assert verify.main([str(rerun), str(published), "--published-env", str(env)]) == 0
    assert "differs from the published record: XLA's CPU thread pool 1 (published) vs 2 (here, PJRT_NPROC)" in (
        capsys.readouterr().out)


def test_a_partial_rerun_is_checked_in_place_of_the_published_jobs(tmp_path, capsys):
    """A folder of training jobs (results/runs/<variant>/data-<seed>/metrics.csv) stands in for its jobs of
    the published table; the rest of the study is the published one."""
    runs = runs_table()
    published = tmp_path / "published.csv"
    runs.to_csv(published, index=False)
    job = tmp_path / "runs/hidden-5/data-0"
    job.mkdir(parents=True)
    part = runs[runs["variant"] == "hidden-5"].drop(columns=["variant", "data_seed", "axis", "value", "backend", "hidden"])
    part.assign(val_mse=part["val_mse"] * 1.1).to_csv(job / "metrics.csv", index=False)
    table = verify.jobs_table(tmp_path / "runs", runs)
    assert list(table.columns) == list(runs.columns) and table["hidden"].eq(5).all()
    merged, jobs = verify.merge_partial(table, runs)
    assert jobs == [("hidden-5", 0)] and merged[verify.KEYS].equals(runs[verify.KEYS])
    assert verify.main([str(tmp_path / "runs"), str(published), "--partial"]) == 1
    out = capsys.readouterr().out
    assert "Partial rerun: 1 training job(s) (variant, series) rerun, hidden-5 0; every other run is the published one" in out
    assert "- hidden-5, data seed 0, sgd, val_mse: mean " in out and "- baseline" not in out
    (tmp_path / "runs/hidden-7/data-0").mkdir(parents=True)
    (job / "metrics.csv").rename(tmp_path / "runs/hidden-7/data-0/metrics.csv")
    with pytest.raises(SystemExit):
        verify.main([str(tmp_path / "runs"), str(published), "--partial"])
    assert capsys.readouterr().err.strip().endswith(
        f"RERUN_RUNS {tmp_path / 'runs'} ({tmp_path / 'runs/hidden-7/data-0/metrics.csv'}): variant hidden-7, "
        "series 0: not a job of the published study")


@pytest.mark.parametrize(("args", "message"), [
    (["missing.csv", "{published}"], "RERUN_RUNS missing.csv: file not found"),
    (["{rerun}", "{published}", "--published-env", "none.json"], "--published-env none.json: file not found"),
    (["{rerun}", "{bad}"], "PUBLISHED_RUNS {bad}: lacks the columns seed"),
    (["{rerun}", "{published}", "--floors", "{env}"], "--floors {env}: lacks the list 'floors' of an attractor record"),
    (["{empty}", "{published}", "--partial"], "RERUN_RUNS {empty}: holds no <variant>/data-<seed>/metrics.csv"),
])
def test_cli_refuses_bad_arguments_before_any_work(tmp_path, capsys, args, message):
    paths = {"rerun": tmp_path / "rerun.csv", "published": tmp_path / "published.csv", "bad": tmp_path / "bad.csv",
             "env": tmp_path / "environment.json", "empty": tmp_path}
    runs_table().to_csv(paths["rerun"], index=False)
    runs_table().to_csv(paths["published"], index=False)
    runs_table().drop(columns="seed").to_csv(paths["bad"], index=False)
    paths["env"].write_text(json.dumps(provenance.environment()))
    with pytest.raises(SystemExit) as exit_:
        verify.main([a.format(**paths) for a in args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "python -m rnn.verify: error: " + message.format(**paths)


def test_numbers_are_read_to_the_last_bit(tmp_path):
    runs = runs_table()
    runs.loc[0, "val_mse"] = 0.1 + 0.2  # 0.30000000000000004
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    again = verify.read_runs(path)
    assert again.loc[0, "val_mse"] == 0.1 + 0.2 != 0.3


def test_the_new_measures_are_compared_and_a_planted_change_in_each_fails():
    """censored_test (a fraction on the grid of 1/50), the two NRMSE84 yardsticks and the model's own exponent are
    metrics like any other: bit-identical on the same table, a whole shift of one variant fails naming it."""
    rng = np.random.default_rng(1)
    runs = runs_table()
    n = len(runs)
    runs = runs.assign(censored_test=rng.integers(0, 4, n) / 50, nrmse_first84_test=0.02 + 0.002 * rng.random(n),
                       nrmse_at84_test=0.05 + 0.005 * rng.random(n), lyapunov_model=0.006 + 2e-4 * rng.random(n))
    metrics, _, _ = verify.column_roles(runs, runs)
    assert {"censored_test", "nrmse_first84_test", "nrmse_at84_test", "lyapunov_model"} <= set(metrics)
    assert verify.compare(runs.copy(), runs).ok
    for column, shift in (("censored_test", 0.2), ("nrmse_at84_test", 0.05), ("lyapunov_model", 0.003)):
        rerun = runs.copy()
        rerun.loc[at(rerun, "hidden-5", "bfgs"), column] += shift
        result = verify.compare(rerun, runs)
        assert not result.ok and [(d.group, d.what) for d in result.differences] == [
            (("hidden-5", 0, "bfgs"), column)], column
