"""rnn.verify on synthetic runs tables: what passes, what fails, and that each failure is named."""

import json

import numpy as np
import pandas as pd
import pytest

from rnn import provenance, verify
from rnn.study import ci95

SEEDS = range(5)
# The baseline's BFGS validation MSE as published: mean 7.94e-05 ± 2.78e-06 (95% CI over five seeds).
BFGS_VAL = 7.94e-5 + np.array([-3, -1, 0, 1, 3]) * 1e-6


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


def test_identical_tables_pass_and_are_bit_identical():
    runs = runs_table()
    result = verify.compare(runs.copy(), runs)
    assert result.ok and result.bit_identical and result.runs == len(runs)
    text = verify.report(result)
    assert "Bit-identical, timing columns aside: yes." in text
    assert text.rstrip().endswith("verify: OK, the rerun agrees with the published tables within tolerance.")
    assert text.count("| agrees |") == 4  # one row per variant x series x optimizer


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


def test_bfgs_noise_within_the_published_ci_passes():
    runs = runs_table()
    rerun = runs.copy()
    rerun.loc[at(rerun, "baseline", "bfgs", 2), "val_mse"] *= 1.02  # one seed lands elsewhere: mean +0.4%
    rerun.loc[at(rerun, "baseline", "bfgs"), "vpt_steps"] = rerun.loc[at(rerun, "baseline", "bfgs"), "vpt_steps"][::-1].to_numpy()
    result = verify.compare(rerun, runs)
    assert result.ok, named(result)
    assert not result.bit_identical
    assert "Bit-identical, timing columns aside: no." in verify.report(result)


@pytest.mark.parametrize("moved", [1.10, 0.90])
def test_a_bfgs_mean_moved_by_ten_percent_with_a_narrow_ci_fails_naming_it(moved):
    runs = runs_table()
    published = runs.copy()
    published.loc[at(published, "baseline", "bfgs"), "val_mse"] *= moved
    assert ci95(BFGS_VAL) < 0.1 * BFGS_VAL.mean()  # ± 2.8e-06 of 7.94e-05
    result = verify.compare(runs, published)
    assert not result.ok
    assert len(result.differences) == 1, named(result)
    diff = result.differences[0]
    assert (diff.group, diff.what, diff.seed) == (("baseline", 0, "bfgs"), "val_mse", None)
    assert str(diff).startswith("baseline, data seed 0, bfgs, val_mse: mean 7.940e-05 here against ")
    assert str(diff).endswith("(the published 95% CI)")
    text = verify.report(result)
    assert "- baseline, data seed 0, bfgs, val_mse: " in text and "verify: FAILED, 1 difference(s)" in text
    assert "| baseline | 0 | bfgs | mean over seeds, max(95% CI, 1%) | 5 | same | 4 of 5 | " in text


@pytest.mark.parametrize("ci_fraction", [0.0, 0.005, 0.02, 0.05, 0.099])
def test_the_tolerance_lets_no_ten_percent_move_pass_when_the_ci_is_narrower(ci_fraction):
    mean = 7.94e-5
    assert verify.tolerance(mean, ci_fraction * mean) < 0.1 * mean
    assert verify.tolerance(mean, 0.3 * mean) == 0.3 * mean  # a wide spread is wide: the CI rules
    assert verify.tolerance(mean, float("nan")) == verify.MEAN_RTOL * mean  # one seed: no CI


def test_a_changed_sgd_value_fails_naming_the_run_and_metric():
    runs = runs_table()
    published = runs.copy()
    published.loc[at(published, "hidden-5", "sgd", 3), "val_mse"] *= 1 + 1e-6
    published.loc[at(published, "baseline", "sgd", 1), "vpt_steps"] += 1
    result = verify.compare(runs, published)
    assert sorted((*d.group, d.seed, d.what) for d in result.differences) == [
        ("baseline", 0, "sgd", 1, "vpt_steps"), ("hidden-5", 0, "sgd", 3, "val_mse")]
    text = "\n".join(named(result))
    assert "hidden-5, data seed 0, sgd, seed 3, val_mse: " in text and "(must agree within 1e-09 relative)" in text
    assert "baseline, data seed 0, sgd, seed 1, vpt_steps: " in text and "(must agree exactly)" in text


def test_sgd_last_bits_pass_across_machines_but_not_on_the_published_one():
    runs = runs_table()
    published = runs.copy()
    published.loc[at(published, "baseline", "sgd", 0), "train_mse"] *= 1 + 1e-13
    assert verify.compare(runs, published).ok  # another machine: 1e-9 relative
    result = verify.compare(runs, published, same_environment=True)
    assert named(result) == [
        f"baseline, data seed 0, sgd, seed 0, train_mse: {runs.loc[0, 'train_mse']:.17g} here against "
        f"{published.loc[0, 'train_mse']:.17g} published (must agree exactly)"]
    assert "| baseline | 0 | sgd | each run, exactly | 5 | same | 4 of 5 | inf (train_mse) | DIFFERS |" in verify.report(result)


def test_sgd_on_a_closed_loop_loss_is_compared_by_means_across_machines():
    """SGD through a closed loop amplifies last bits to a different trajectory: on another machine its
    runs are compared like BFGS's (means within the published CI), on the published one to the last bit;
    one-step SGD keeps the per-run rule everywhere."""
    published = runs_table().assign(rollout_steps=1)
    published.loc[published["variant"] == "hidden-5", "rollout_steps"] = 8
    rerun = published.copy()
    for variant in ("baseline", "hidden-5"):
        rerun.loc[at(rerun, variant, "sgd"), "val_mse"] *= 1 + 1e-3 * np.array([1, -1, 1, -1, 0.5])
    result = verify.compare(rerun, published)
    assert sorted({d.group for d in result.differences}) == [("baseline", 0, "sgd")]  # one-step: per run
    assert "| hidden-5 | 0 | sgd | mean over seeds, max(95% CI, 1%); SGD on a closed-loop loss | 5 | same |" in (
        verify.report(result))
    same = verify.compare(rerun, published, same_environment=True)
    assert {d.group for d in same.differences} == {("baseline", 0, "sgd"), ("hidden-5", 0, "sgd")}
    # a real change of the closed-loop SGD runs still fails across machines
    rerun.loc[at(rerun, "hidden-5", "sgd"), "val_mse"] *= 1.2
    moved = verify.compare(rerun, published)
    assert ("hidden-5", 0, "sgd") in {d.group for d in moved.differences}


def with_long_runs(runs):
    """The table with the long-run measures: each run's D_stsp and D_H near the study's floors."""
    rng = np.random.default_rng(1)
    return runs.assign(d_stsp=0.1 + 0.02 * rng.standard_normal(len(runs)),
                       d_h=0.01 + 0.002 * rng.standard_normal(len(runs)))


@pytest.mark.parametrize("optimizer", ["sgd", "bfgs"])
def test_long_runs_on_another_machine_are_another_sample_of_the_attractor(optimizer):
    """A deterministic model's 10,000-step run differs completely after a last-bit change: its D_stsp and D_H
    are compared as means within the floor elsewhere, and to the last bit on the published machine."""
    published = with_long_runs(runs_table())
    rerun = published.copy()
    every = at(rerun, "baseline", optimizer)
    rerun.loc[every, "d_stsp"] += 0.1 * np.array([1, -1, 1, -1, 1])  # each run moved by a new sample's spread
    rerun.loc[every, "d_h"] += 0.01
    assert verify.compare(rerun, published).ok
    result = verify.compare(rerun, published, same_environment=True)
    assert {d.what for d in result.differences} == {"d_stsp", "d_h"}
    # a model that left the attractor moves the mean by far more than the floor: a difference anywhere
    rerun.loc[every, "d_stsp"] = 3.0
    result = verify.compare(rerun, published)
    assert [(d.group, d.what) for d in result.differences] == [(("baseline", 0, optimizer), "d_stsp")]
    assert "tolerance ± 0.15 (the long-run measure's floor)" in named(result)[0]
    if optimizer == "sgd":
        assert "long runs: mean over seeds" in verify.report(result)


@pytest.mark.parametrize("optimizer", ["sgd", "bfgs"])
def test_a_changed_status_fails_naming_the_run(optimizer):
    runs = runs_table()
    rerun = runs.copy()
    row = at(rerun, "hidden-5", optimizer, 4)
    rerun.loc[row, "status"] = "diverged"
    rerun.loc[row, ["train_mse", "val_mse", "nrmse_84", "vpt_steps", "vpt_lyapunov"]] = np.nan
    result = verify.compare(rerun, runs)
    assert named(result) == [f"hidden-5, data seed 0, {optimizer}, seed 4, status: 'diverged' here against 'ok' published"]
    assert f"| hidden-5 | 0 | {optimizer} |" in verify.report(result) and "| 1 differ |" in verify.report(result)


def test_missing_and_extra_variants_optimizers_and_seeds_are_differences():
    runs = runs_table()
    rerun = runs[~at(runs, "hidden-5", "bfgs", 2) & (runs["variant"] != "baseline") | at(runs, "baseline", "sgd")]
    extra = runs[at(runs, "hidden-5", "sgd")].assign(optimizer="lbfgs")
    rerun = pd.concat([rerun, extra, runs[at(runs, "hidden-5", "sgd", 0)].assign(seed=7)], ignore_index=True)
    result = verify.compare(rerun, runs)
    assert named(result) == ["baseline, data seed 0, bfgs, optimizer: missing from the rerun",
                             "hidden-5, data seed 0, lbfgs, optimizer: only in the rerun",
                             "hidden-5, data seed 0, bfgs, seed 2, run: missing from the rerun",
                             "hidden-5, data seed 0, sgd, seed 7, run: only in the rerun"]
    only_variant = verify.compare(runs[runs["variant"] == "baseline"], runs)
    assert named(only_variant) == ["hidden-5, variant: missing from the rerun"]
    other_series = pd.concat([runs, runs[runs["variant"] == "baseline"].assign(data_seed=1)], ignore_index=True)
    assert named(verify.compare(runs, other_series)) == ["baseline, data seed 1, series: missing from the rerun"]


def test_each_series_is_compared_on_its_own():
    """The same variant on two series: a moved mean on one is named with its data seed, the other agrees."""
    one = runs_table()
    two = pd.concat([one, one.assign(data_seed=3)], ignore_index=True)
    published = two.copy()
    published.loc[at(published, "baseline", "bfgs") & (published["data_seed"] == 3), "val_mse"] *= 1.1
    result = verify.compare(two, published)
    assert [(d.group, d.what) for d in result.differences] == [(("baseline", 3, "bfgs"), "val_mse")]
    text = verify.report(result)
    assert "| baseline | 0 | bfgs | mean over seeds, max(95% CI, 1%) | 5 | same | 5 of 5 | 0 | agrees |" in text
    assert "| baseline | 3 | bfgs | mean over seeds, max(95% CI, 1%) | 5 | same | 4 of 5 | " in text


def test_a_changed_setting_or_missing_metric_column_is_a_difference():
    runs = runs_table()
    rerun = runs.assign(hidden=np.where(runs["variant"] == "hidden-5", 6, 15)).drop(columns="nrmse_84")
    result = verify.compare(rerun, runs)
    assert "nrmse_84: column missing from the rerun" in named(result)
    assert sum(d.what == "hidden" for d in result.differences) == 10  # each run of hidden-5
    assert "hidden-5, data seed 0, sgd, seed 0, hidden: 6 here against 5 published" in named(result)


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
    assert "Environment: the same software versions and CPU as the published record" in out
    assert "| baseline | 0 | sgd | each run, exactly |" in out and "verify: OK" in out

    other = {**provenance.environment(), "cpu": "Another CPU"}
    env.write_text(json.dumps(other))
    runs.assign(val_mse=runs["val_mse"] * 1.1).to_csv(published, index=False)
    assert verify.main([str(rerun), str(published), "--published-env", str(env)]) == 1
    out = capsys.readouterr().out
    assert "differs from the published record: cpu Another CPU (published) vs " in out
    assert "| baseline | 0 | sgd | each run, 1e-09 relative |" in out
    assert "- baseline, data seed 0, bfgs, val_mse: mean " in out and "verify: FAILED" in out


@pytest.mark.parametrize(("args", "message"), [
    (["missing.csv", "{published}"], "RERUN_RUNS missing.csv: file not found"),
    (["{rerun}", "{published}", "--published-env", "none.json"], "--published-env none.json: file not found"),
    (["{rerun}", "{bad}"], "PUBLISHED_RUNS {bad}: lacks the columns seed"),
])
def test_cli_refuses_bad_arguments_before_any_work(tmp_path, capsys, args, message):
    paths = {"rerun": tmp_path / "rerun.csv", "published": tmp_path / "published.csv", "bad": tmp_path / "bad.csv"}
    runs_table().to_csv(paths["rerun"], index=False)
    runs_table().to_csv(paths["published"], index=False)
    runs_table().drop(columns="seed").to_csv(paths["bad"], index=False)
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
