"""The generation question in the workflow, on two series: a named reservoir variant (ridge), a named
closed-loop variant with its own optimizers, restarts and ablations around it, a rollout_steps
ablation on one series only, the test segment's scores, the long-term measures, the findings'
questions and figures — the real Snakemake CLI on a tiny study in a temporary copy."""

import copy
import json

import numpy as np
import pandas as pd
import pytest

from rnn import settings, study as study_module
from rnn.findings import BEGIN, END
from helpers import TINY, copy_study, finished_study, is_png, ok, planned, read_runs, write_config

CONFIG = copy.deepcopy(TINY)
CONFIG["data"]["seed"] = [0, 1]
CONFIG["ablations"] = {"rollout_steps": [3], "input_noise": [0.01], "data_seed": [0]}
CONFIG["variants"] = {
    "reservoir": {"hidden": 30, "init_scale_in": 0.5, "init_scale_rec": 1.0, "init_scale_bias": 0.2,
                  "spectral_radius": 0.9, "washout": 20, "ridge": 1.0e-8, "optimizers": ["ridge"]},
    "closed-loop": {"hidden": 5, "rollout_steps": 4, "input_noise": 0.005, "washout": 20, "l2": 0.0,
                    "bfgs_maxiter": 12, "restarts": 2, "optimizers": ["lbfgs", "ridge+lbfgs"],
                    "ablations": {"hidden": [4], "skip": [True], "data_seed": [1]}},
}
NAMED = {"reservoir": ["ridge"], "closed-loop": ["lbfgs", "ridge+lbfgs"]}
NESTED = {"closed-loop/hidden-4": ("hidden", "4"), "closed-loop/skip-true": ("skip", "true")}
SERIES = {  # variant -> the series it runs on
    "baseline": [0, 1], "rollout_steps-3": [0], "input_noise-0.01": [0], "reservoir": [0, 1], "closed-loop": [0, 1],
    **{name: [1] for name in NESTED}}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = finished_study(tmp_path_factory.mktemp("generation"), CONFIG)
    (root / "README.md").write_text(f"# A study\n\n{BEGIN}\n{END}\n")
    ok(root, "--cores", "2", "publish")
    return root


def test_each_variant_runs_once_on_each_of_its_series(study):
    runs = read_runs(study)
    assert sorted(set(runs["variant"])) == sorted(SERIES)
    for name, series in SERIES.items():
        rows = runs[runs["variant"] == name]
        assert sorted(set(rows["data_seed"])) == series, name
        per_series = rows.groupby("data_seed").size()
        assert (per_series == len(set(rows["optimizer"])) * len(CONFIG["seeds"])).all(), name
    # the same settings on another series give other numbers: the series differ
    base = runs[(runs["variant"] == "baseline") & (runs["optimizer"] == "sgd")].set_index(["data_seed", "seed"])
    assert not np.allclose(base.loc[0, "val_mse"], base.loc[1, "val_mse"])
    assert (study / "results/data/series-0.npz").is_file() and (study / "results/data/series-1.npz").is_file()


def test_named_variants_run_their_own_optimizers_and_say_what_was_run(study):
    runs = read_runs(study)
    for name, optimizers in NAMED.items():
        rows = runs[runs["variant"] == name]
        assert sorted(set(rows["optimizer"])) == sorted(optimizers)
        assert len(rows) == len(optimizers) * len(CONFIG["seeds"]) * len(SERIES[name])
        assert set(rows["axis"]) == {"variant"} and set(rows["value"]) == {name} and set(rows["base"]) == {name}
        for key, value in CONFIG["variants"][name].items():
            if key not in settings.VARIANT_KEYS:
                assert (rows[key] == value).all(), (name, key)
    closed = runs[runs["variant"] == "closed-loop"]
    assert (closed["nonlinearity"] == "tanh").all() and (closed["rollout_schedule"] == "doubling").all()
    assert set(runs.loc[runs["variant"] == "rollout_steps-3", "rollout_steps"]) == {3}
    assert set(runs.loc[runs["variant"] == "rollout_steps-3", "base"]) == {"baseline"}
    assert set(runs.loc[runs["variant"] == "baseline", "optimizer"]) == set(CONFIG["optimizers"])


def test_ablations_around_a_named_variant_change_one_of_its_settings(study):
    runs = read_runs(study)
    base = runs[runs["variant"] == "closed-loop"].iloc[0]
    for name, (axis, value) in NESTED.items():
        rows = runs[runs["variant"] == name]
        assert set(rows["base"]) == {"closed-loop"} and set(rows["axis"]) == {axis} and set(rows["value"]) == {value}
        assert sorted(set(rows["optimizer"])) == sorted(NAMED["closed-loop"])  # the base's optimizers
        changed = [k for k in settings.BASELINE if rows.iloc[0][k] != base[k] and not pd.isna([rows.iloc[0][k], base[k]]).all()]
        assert changed == [axis], name
    # two restarts per weight seed, one kept: which one is recorded, and it cost both trainings
    closed = runs[runs["variant"].str.startswith("closed-loop")]
    assert set(closed["restarts"]) == {2} and set(closed["restart"]) <= {0, 1}
    assert (runs.loc[runs["variant"] == "baseline", "restart"] == 0).all()


def test_every_run_is_scored_on_the_test_and_validation_start_points_and_the_attractor(study):
    runs = read_runs(study)
    fine = runs[runs["status"] == "ok"]
    assert len(fine) > 0.8 * len(runs)
    assert (fine["n_starts"] == CONFIG["generation"]["starts"]).all()
    assert fine["vpt_steps_test"].between(0, CONFIG["generation"]["horizon"]).all()
    assert fine["vpt_steps_val"].between(0, CONFIG["data"]["validation"]).all()
    reservoir = fine[fine["variant"] == "reservoir"]
    assert len(reservoir) == 4 and reservoir["val_mse"].max() < 1e-4  # the read-out fits the one-step map well
    attractor = json.loads((study / "results/data/attractor.json").read_text())
    assert attractor["lag"] >= 1 and attractor["dim"] >= 1
    floor = max(r["d_stsp"] for r in attractor["floors"] if r["case"] == "truth")
    worst = max(r["d_stsp"] for r in attractor["floors"]) * (1 + 1e-12)  # a run all off the attractor: to rounding
    assert fine["d_stsp"].between(0, worst).all() and fine["d_h"].between(0, 1).all()
    # the tutorial's one-step recipe collapses (the constant's scores); the reservoir does better
    tutorial = fine[(fine["variant"] == "baseline") & (fine["optimizer"] == "sgd")]
    assert tutorial["d_h"].min() > reservoir["d_h"].max() and tutorial["d_stsp"].min() > floor
    table = pd.read_csv(study / "results/tables/ablation.csv", dtype={"data_seed": str})
    for metric in ("vpt_steps_test", "vpt_lyapunov_test", "nrmse_first84_test", "nrmse_at84_test", "censored_test", "vpt_steps_val", "d_stsp", "d_h"):
        assert {f"{metric}_mean", f"{metric}_median", f"{metric}_min", f"{metric}_ci95"} <= set(table.columns)
    pooled = table[(table["data_seed"] == study_module.POOLED) & (table["variant"] == "reservoir")].iloc[0]
    assert pooled["n"] == 4 and pooled["n_series"] == 2
    assert pooled["d_h_mean"] == pytest.approx(reservoir["d_h"].mean())
    for d in ("0", "1"):
        row = table[(table["data_seed"] == d) & (table["variant"] == "reservoir")].iloc[0]
        assert row["n"] == 2 and row["d_h_mean"] == pytest.approx(reservoir.loc[reservoir["data_seed"] == int(d), "d_h"].mean())


def test_findings_answer_the_generation_questions(study):
    findings = (study / "results/published/findings.md").read_text()
    section = findings[findings.index("#### What makes the network generate?"):]
    for contender in ("the tutorial's recipe", "best RNN (≤ 60 units)", "reservoir (echo state network)"):
        assert contender in section
    assert "Target for the best RNN" in section and "Target for the reservoir" in section
    assert "data seed 0: " in section and "data seed 1: " in section  # the targets are judged per series
    assert "runs < 0.5 Lyapunov time" in section and "D_stsp median" in section and "D_H median" in section
    assert "floor: the generator itself" in section and "a pure sine" in section and "a constant" in section
    assert section.count("On the attractor?") == 3
    assert "Jaeger's NRMSE84" not in section and "nan" not in section  # a 50-step horizon has no step 84
    for name in ("valid_time", "generation_continuations", "generation_attractors", "generation_longterm", "around"):
        assert is_png(study / f"results/figures/{name}.png") and f"({'figures/' + name}.png)" in findings
    # the cross-series table: every series, every contender, regenerated by publish
    table = findings[findings.index("#### On every series"):]
    assert "| 0 | " in table and "| 1 | " in table
    long_runs = table[table.index("D_stsp / D_H of each contender"):table.index("#### What matters")]
    assert long_runs.count("(worst ") == 2 * 2 * 3  # two measures, two series, three contenders
    around = findings[findings.index("#### What matters once the network generates?"):]
    for name in NESTED:
        assert f"| {name} |" in around and f"**{name}**" in around
    # like for like: the base's row counts only its runs on the series its ablations ran on (data seed 1)
    runs = read_runs(study)
    assert "Around **closed-loop**, on data seed 1" in around
    seeds = len(CONFIG["seeds"])
    assert f"| closed-loop | lbfgs | {seeds} |" in around and f"| closed-loop | lbfgs | {2 * seeds} |" not in around
    base = runs[(runs["variant"] == "closed-loop") & (runs["optimizer"] == "lbfgs") & (runs["data_seed"] == 1)]
    assert study_module.mean_ci(study_module.comparable(runs, "closed-loop")[0].query(
        "variant == 'closed-loop' and optimizer == 'lbfgs'").iloc[0], "vpt_steps_test") in around
    assert study_module.comparable(runs, "closed-loop")[1] == [1] and len(base) == seeds
    # the one-step "Things to try" (data seed 0) against the baseline's runs on series 0 only
    assert "The \"Things to try\" below ran on data seed 0; each compares with the baseline's runs on the same series." in findings
    table, shown = study_module.comparable(runs, "baseline")
    assert shown == [0] and (table.loc[table["variant"] == "baseline", "n"] == seeds).all()
    questions = findings[findings.index("below ran on data seed 0"):findings.index("#### What makes the network")]
    assert (f"| baseline (closed-loop training horizon (steps) 1, input noise (std) 0.0) | gradient descent | {seeds} |"
            in questions)


def test_only_the_new_series_runs_when_one_is_added(study, tmp_path):
    root = copy_study(study, tmp_path / "study")
    config = copy.deepcopy(CONFIG)
    config["data"]["seed"] = [0, 1, 2]
    write_config(root, config)
    plan = planned(root)
    assert plan["data"] == ["2"]
    assert plan["train"] == sorted(f"{v},2" for v, series in SERIES.items() if series == [0, 1])
    assert "lyapunov" not in plan and "attractor" not in plan


def test_a_changed_named_variant_reruns_alone(study, tmp_path):
    root = copy_study(study, tmp_path / "study")
    config = copy.deepcopy(CONFIG)
    config["variants"]["reservoir"]["ridge"] = 1.0e-6
    write_config(root, config)
    plan = planned(root)
    assert plan["train"] == ["reservoir,0", "reservoir,1"]
    assert "data" not in plan and "lyapunov" not in plan


def test_a_changed_base_reruns_the_ablations_around_it(study, tmp_path):
    root = copy_study(study, tmp_path / "study")
    config = copy.deepcopy(CONFIG)
    config["variants"]["closed-loop"]["input_noise"] = 0.01
    write_config(root, config)
    plan = planned(root)
    assert plan["train"] == sorted(["closed-loop,0", "closed-loop,1", *(f"{n},1" for n in NESTED)])
