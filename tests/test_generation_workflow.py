"""The generation question in the workflow: a named reservoir variant (ridge), a named closed-loop
variant with its own optimizers, a rollout_steps ablation, the test segment's scores, the findings'
question and its figures — the real Snakemake CLI on a tiny study in a temporary copy."""

import copy

import numpy as np
import pandas as pd
import pytest

from rnn.findings import BEGIN, END
from helpers import TINY, copy_study, finished_study, is_png, ok, planned, read_runs, write_config

CONFIG = copy.deepcopy(TINY)
CONFIG["ablations"] = {"rollout_steps": [3], "input_noise": [0.01]}
CONFIG["variants"] = {
    "reservoir": {"hidden": 30, "init_scale_in": 0.5, "init_scale_rec": 1.0, "spectral_radius": 0.9,
                  "washout": 20, "ridge": 1.0e-8, "optimizers": ["ridge"]},
    "closed-loop": {"hidden": 5, "rollout_steps": 4, "input_noise": 0.005, "washout": 20, "l2": 0.0,
                    "bfgs_maxiter": 12, "optimizers": ["lbfgs", "ridge+lbfgs"]},
}
NAMED = {"reservoir": ["ridge"], "closed-loop": ["lbfgs", "ridge+lbfgs"]}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = finished_study(tmp_path_factory.mktemp("generation"), CONFIG)
    (root / "README.md").write_text(f"# A study\n\n{BEGIN}\n{END}\n")
    ok(root, "--cores", "2", "publish")
    return root


def test_named_variants_run_their_own_optimizers_and_say_what_was_run(study):
    runs = read_runs(study)
    for name, optimizers in NAMED.items():
        rows = runs[runs["variant"] == name]
        assert sorted(set(rows["optimizer"])) == sorted(optimizers)
        assert len(rows) == len(optimizers) * len(CONFIG["seeds"])
        assert set(rows["axis"]) == {"variant"} and set(rows["value"]) == {name}
        for key, value in CONFIG["variants"][name].items():
            if key != "optimizers":
                assert (rows[key] == value).all(), (name, key)
    closed = runs[runs["variant"] == "closed-loop"]
    assert (closed["nonlinearity"] == "tanh").all() and (closed["rollout_schedule"] == "doubling").all()
    assert set(runs.loc[runs["variant"] == "rollout_steps-3", "rollout_steps"]) == {3}
    assert set(runs.loc[runs["variant"] == "baseline", "optimizer"]) == set(CONFIG["optimizers"])


def test_every_run_is_scored_on_the_test_and_validation_start_points(study):
    runs = read_runs(study)
    fine = runs[runs["status"] == "ok"]
    assert len(fine) > 0.8 * len(runs)
    assert (fine["n_starts"] == CONFIG["generation"]["starts"]).all()
    assert fine["vpt_steps_test"].between(0, CONFIG["generation"]["horizon"]).all()
    assert fine["vpt_steps_val"].between(0, CONFIG["data"]["validation"]).all()
    reservoir = fine[fine["variant"] == "reservoir"]
    assert len(reservoir) == 2 and reservoir["val_mse"].max() < 1e-4  # the read-out fits the one-step map well
    table = pd.read_csv(study / "results/tables/ablation.csv")
    for metric in ("vpt_steps_test", "vpt_lyapunov_test", "nrmse_84_test", "vpt_steps_val"):
        assert {f"{metric}_mean", f"{metric}_median", f"{metric}_ci95"} <= set(table.columns)


def test_findings_answer_what_makes_the_network_generate(study):
    findings = (study / "results/published/findings.md").read_text()
    section = findings[findings.index("#### What makes the network generate?"):]
    for contender in ("the tutorial's recipe", "best RNN (≤ 60 units)", "reservoir (echo state network)"):
        assert contender in section
    assert "Target for the best RNN" in section and "Target for the reservoir" in section
    for name in ("valid_time", "generation_continuations", "generation_attractors"):
        assert is_png(study / f"results/figures/{name}.png") and f"({'figures/' + name}.png)" in findings


def test_a_changed_named_variant_reruns_alone(study, tmp_path):
    root = copy_study(study, tmp_path / "study")
    config = copy.deepcopy(CONFIG)
    config["variants"]["reservoir"]["ridge"] = 1.0e-6
    write_config(root, config)
    plan = planned(root)
    assert plan["train"] == ["reservoir"]
    assert "data" not in plan and "lyapunov" not in plan
