"""Workflow tests: the real Snakemake CLI on a tiny study, in temporary copies of the repository.

The tiny study runs once per module (fixture ``study``); the output checks read it, and the rerun
tests dry-run copies of it (``shutil.copytree`` keeps mtimes and ``.snakemake/`` metadata), parsing
the jobs Snakemake would run. Bad configs run against fresh copies that hold no results.
"""

import copy
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rnn import backends
from rnn import settings, study as study_module
from bad_configs import BAD_CONFIGS
from helpers import (REPO, TINY, copy_repo, copy_study, finished_study, is_png, jobs, ok, planned, read_runs, run_dir,
                     snakemake, write_config)

VARIANTS = {  # name -> (axis, value as written in the tables)
    "baseline": ("baseline", ""),
    "hidden-3": ("hidden", "3"),
    "nonlinearity-relu": ("nonlinearity", "relu"),
    "skip-true": ("skip", "true"),
    "lr-0.1": ("lr", "0.1"),
}
AXES = ["hidden", "nonlinearity", "skip", "lr"]
OPTIMIZERS = TINY["optimizers"]
SEEDS = TINY["seeds"]
STUDY_FIGURES = ["prediction", "learning_curves", "attractor", "continuation_best", "valid_time",
                 "generation_continuations", "generation_attractors", "generation_longterm", "around", "exponents"]
PLOT_RULES = {"plot_variant", "plot_ablation", "figures"}


# the tiny study (fixtures ``study``, ``study_copy``) is run once per session: tests/conftest.py

def lyapunov_of(root):
    return json.loads((root / "results/data/lyapunov.json").read_text())["lyapunov_per_sample"]


# --- the finished study -------------------------------------------------------------------------

def test_runs_table_has_one_row_per_variant_optimizer_seed(study):
    runs = read_runs(study)
    required = ["variant", "base", "axis", "value", "data_seed", "optimizer", "seed", "restart", "backend", "status",
                "train_mse", "val_mse", "nrmse_1", "nrmse_84", "vpt_steps", "vpt_lyapunov", "spectral_error",
                "train_seconds", "bfgs_iterations", "vpt_steps_test", "vpt_lyapunov_test", "nrmse_first84_test", "nrmse_at84_test", "censored_test", "n_starts",
                "d_stsp", "d_h", "job_compile_seconds", *settings.BASELINE]  # every row says what was run
    assert set(required) <= set(runs.columns), set(required) - set(runs.columns)
    # NRMSE at h steps only for the h within the horizon (150): 1 and 84, not 200, 500, 1000.
    assert {c for c in runs.columns if c.startswith("nrmse_")} == {"nrmse_1", "nrmse_84", "nrmse_first84_test", "nrmse_at84_test", "nrmse_val"}
    # the test segment's start points: 3 of them, each free-running 50 steps
    assert set(runs["n_starts"]) == {TINY["generation"]["starts"]}
    scored = runs[runs["status"] == "ok"]
    assert scored["vpt_steps_test"].between(0, TINY["generation"]["horizon"]).all()
    assert np.allclose(scored["vpt_lyapunov_test"], scored["vpt_steps_test"] * lyapunov_of(study))
    for name in VARIANTS:
        rows = runs[runs["variant"] == name]
        assert (rows["hidden"] == (3 if name == "hidden-3" else TINY["baseline"]["hidden"])).all()
    keys = list(zip(runs["variant"], runs["optimizer"], runs["seed"]))
    assert len(keys) == len(set(keys)) == len(VARIANTS) * len(OPTIMIZERS) * len(SEEDS)
    assert set(keys) == {(v, o, s) for v in VARIANTS for o in OPTIMIZERS for s in SEEDS}
    for name, (axis, value) in VARIANTS.items():
        rows = runs[runs["variant"] == name]
        assert set(rows["axis"]) == {axis} and set(rows["value"]) == {value}, name
    assert set(runs["backend"]) == {"jax"} and set(runs["data_seed"]) == {0} and set(runs["base"]) == {"baseline"}
    assert set(runs["restart"]) == {0}
    assert set(runs["status"]) <= {"ok", "unstable", "diverged"}

    trained = runs[runs["status"] != "diverged"]
    assert len(trained) > 0
    for col in ("train_mse", "val_mse", "nrmse_1"):
        assert np.all(np.isfinite(trained[col])) and np.all(trained[col] >= 0), col
    assert np.all(runs["train_seconds"] > 0)
    assert np.all(np.isfinite(runs.loc[runs["status"] == "ok", "vpt_steps"]))
    assert runs.loc[runs["optimizer"] == "sgd", "bfgs_iterations"].isna().all()
    # the long free runs: each scored against the reference, never NaN for a trained run
    attractor = json.loads((study / "results/data/attractor.json").read_text())
    worst = max(r["d_stsp"] for r in attractor["floors"]) * (1 + 1e-12)  # a run all off the attractor: to rounding
    assert trained["d_stsp"].between(0, worst).all() and trained["d_h"].between(0, 1).all()
    iterations = trained.loc[trained["optimizer"] != "sgd", "bfgs_iterations"]
    assert iterations.notna().all() and iterations.between(1, TINY["baseline"]["bfgs_maxiter"]).all()


def test_ablation_table_summarises_runs(study):
    runs = read_runs(study)
    both = pd.read_csv(study / "results/tables/ablation.csv", dtype={"value": str, "data_seed": str}).fillna({"value": ""})
    assert set(both["data_seed"]) == {"0", study_module.POOLED}  # one series, and all series pooled
    series = both[both["data_seed"] == "0"].drop(columns="data_seed").reset_index(drop=True)
    table = both[both["data_seed"] == study_module.POOLED].drop(columns="data_seed").reset_index(drop=True)
    pd.testing.assert_frame_equal(series, table)  # with one series, pooling changes nothing
    pairs = list(zip(table["variant"], table["optimizer"]))
    assert sorted(pairs) == sorted((v, o) for v in VARIANTS for o in OPTIMIZERS)
    assert (table["n"] == len(SEEDS)).all()
    assert (table["n_ok"] + table["n_unstable"] + table["n_diverged"] == table["n"]).all()
    for metric in ("train_mse", "val_mse", "nrmse_1", "nrmse_84", "vpt_steps", "vpt_lyapunov", "spectral_error"):
        for stat in ("mean", "std", "ci95"):
            assert f"{metric}_{stat}" in table.columns, f"{metric}_{stat}"
    for _, row in table.iterrows():
        group = runs[(runs["variant"] == row["variant"]) & (runs["optimizer"] == row["optimizer"])]
        assert row["n_diverged"] == (group["status"] == "diverged").sum()
        values = group.loc[group["status"] != "diverged", "val_mse"].to_numpy(float)
        values = values[np.isfinite(values)]
        if len(values):
            assert math.isclose(row["val_mse_mean"], values.mean(), rel_tol=1e-9)
        assert (row["axis"], row["value"]) == VARIANTS[row["variant"]]

    markdown = (study / "results/tables/ablation.md").read_text()
    for axis in AXES:
        assert f"### {axis}" in markdown
    for name in VARIANTS:
        assert f"| {name} |" in markdown


def test_figures_are_valid_pngs(study):
    expected = {f"continuations/{v}.png" for v in VARIANTS} | {f"curves/{v}.png" for v in VARIANTS}
    expected |= {f"ablation/{a}.png" for a in AXES} | {f"{f}.png" for f in STUDY_FIGURES}
    figures = study / "results/figures"
    assert {str(p.relative_to(figures)) for p in figures.rglob("*.png")} == expected
    for name in sorted(expected):
        assert is_png(figures / name), name
    # atomic writes leave no temporary files behind
    assert not [p for p in (study / "results").rglob("*") if p.name.endswith(".tmp")]


def test_summary_links_existing_figures(study):
    summary = study / "results/summary.md"
    text = summary.read_text()
    assert text.startswith("# RNN ablation study: summary")
    assert f"Variants: {len(VARIANTS)} ({len(VARIANTS)} training jobs, one per variant and series)." in text
    assert f"Runs: {len(VARIANTS) * len(OPTIMIZERS) * len(SEEDS)} (" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == len(AXES) + len(STUDY_FIGURES)
    for link in links:
        assert (summary.parent / link).is_file(), link


def test_every_job_has_a_log_and_training_logs_progress(study):
    logs = [study / "logs" / f for f in ("data/series-0.log", "lyapunov.log", "attractor.log", "aggregate.log",
                                         "figures.log", "summary.log")]
    logs += [study / f"logs/train/{v}/data-0.log" for v in VARIANTS] + [study / f"logs/plot_variant/{v}.log" for v in VARIANTS]
    logs += [study / f"logs/plot_ablation/{a}.log" for a in AXES]
    assert [p for p in logs if not p.is_file()] == []
    last_epoch = TINY["baseline"]["epochs"] - 1
    for name in VARIANTS:
        text = (study / f"logs/train/{name}/data-0.log").read_text()
        epochs = [int(e) for e in re.findall(r"epoch (\d+) cost", text)]
        assert len(epochs) >= 2 and max(epochs) == last_epoch, name
        assert re.search(r"bfgs iteration \d+ cost", text), name
        tunables = re.search(r"'glibc_tunables': '([^']*)'", text).group(1)  # the workflow set them for the job
        assert {t.partition("=")[0] for t in tunables.split(":")} >= set(backends.MALLOC_TUNABLES), name


def test_every_job_records_its_resource_use(study):
    files = [f"benchmarks/train/{v}/data-0.tsv" for v in VARIANTS] + [f"benchmarks/plot_variant/{v}.tsv" for v in VARIANTS]
    files += ["benchmarks/data/series-0.tsv", "benchmarks/lyapunov.tsv", "benchmarks/attractor.tsv",
              "benchmarks/aggregate.tsv", "benchmarks/figures.tsv", "benchmarks/summary.tsv"]
    for name in files:
        bench = pd.read_csv(study / name, sep="\t")
        assert {"s", "max_rss", "cpu_time"} <= set(bench.columns)
        assert len(bench) == 1 and bench["s"].iloc[0] > 0, name


def test_report_builds_offline(study_copy):
    out = ok(study_copy, "--report", "results/report.html")
    assert "ERROR/" not in out, "a report caption does not parse as reStructuredText"
    report = study_copy / "results/report.html"
    assert report.stat().st_size > 100_000
    html = report.read_text(errors="replace")
    assert html.lstrip().lower().startswith("<!doctype html")
    for name in ("hidden-3", "skip-true", "ablation.csv", "summary.md"):
        assert name in html, name
    # in a real browser (tests/browser.py): every figure of the report and of the static summary loads
    from browser import REPORT_FIGURES, page_problems

    figures = len(list((study_copy / "results/figures").rglob("*.png")))
    assert page_problems(report, min_images=figures, reveal=REPORT_FIGURES) == []
    assert page_problems(study_copy / "results/summary.html", min_images=len(AXES) + len(STUDY_FIGURES)) == []


# --- rerun semantics ----------------------------------------------------------------------------

def test_second_run_has_nothing_to_do(study_copy):
    before = {p: p.stat().st_mtime_ns for p in (study_copy / "results").rglob("*") if p.is_file()}
    out = ok(study_copy, "--cores", "4")
    assert "Nothing to be done" in out
    assert jobs(out) == []
    after = {p: p.stat().st_mtime_ns for p in (study_copy / "results").rglob("*") if p.is_file()}
    assert after == before


def test_new_ablation_value_trains_only_that_variant(study_copy):
    config = copy.deepcopy(TINY)
    config["ablations"]["hidden"] = [4]
    write_config(study_copy, config)
    plan = planned(study_copy)
    assert plan["train"] == ["hidden-4,0"]
    assert plan["plot_variant"] == ["hidden-4"]
    assert "aggregate" in plan and "summary" in plan
    assert "data" not in plan


@pytest.mark.parametrize(("key", "value", "override"), [("lr", 0.2, "lr-0.1"),
                                                        ("nonlinearity", "sigmoid", "nonlinearity-relu")])
def test_baseline_change_retrains_variants_that_inherit_it(study_copy, key, value, override):
    config = copy.deepcopy(TINY)
    config["baseline"][key] = value
    write_config(study_copy, config)
    plan = planned(study_copy)
    assert plan["train"] == sorted(f"{v},0" for v in VARIANTS if v != override)
    assert "data" not in plan


def test_editing_the_package_init_reruns_every_job(study_copy):
    """Every job imports ``rnn/__init__.py`` before any module of the package: its code keys them all."""
    with open(study_copy / "rnn/__init__.py", "a") as f:
        f.write("\nEDITED_BY_A_TEST = 1\n")
    plan = planned(study_copy)
    assert plan["train"] == sorted(f"{v},0" for v in VARIANTS)
    assert plan["plot_variant"] == sorted(VARIANTS)
    assert plan["plot_ablation"] == sorted(AXES)
    assert {"data", "lyapunov", "attractor", "aggregate", "figures", "summary"} <= set(plan)


def test_editing_plots_module_reruns_only_plots(study_copy):
    with open(study_copy / "rnn/plots.py", "a") as f:
        f.write("\nEDITED_BY_A_TEST = 1\n")
    plan = planned(study_copy)
    assert PLOT_RULES <= set(plan)
    assert set(plan) <= PLOT_RULES | {"summary", "all"}
    assert plan["plot_variant"] == sorted(VARIANTS)
    assert plan["plot_ablation"] == sorted(AXES)


# --- config validation --------------------------------------------------------------------------

# Every bad config is checked in-process (tests/unit/test_settings.py, through the validation the workflow
# runs); these few go through the CLI: refused before any job, nothing written.
CLI_CASES = ["unknown-generator", "horizon-too-long", "nested-ablation-bad-value", "unknown-top-level-key",
             "longterm-reference-shorter-than-the-run"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_bad_config_is_refused_before_any_job(tmp_path, case):
    change, expected = BAD_CONFIGS[case]
    config = copy.deepcopy(TINY)
    change(config)
    root = copy_repo(tmp_path / "repo", config)
    rc, out = snakemake(root, "--cores", "1")
    assert rc != 0
    message = out[out.find("Invalid config"):]
    assert "Invalid config" in out, out[-3000:]
    for pattern in expected:
        assert re.search(pattern, message), f"{pattern!r} not in the error:\n{message[:2000]}"
    assert jobs(out) == []
    for folder in ("results", "logs", "benchmarks"):
        assert not (root / folder).exists(), folder


# --- lint, format (the cluster profile: test_slurm.py) ------------------------------------------

def test_lint_is_clean(tmp_path):
    root = copy_repo(tmp_path / "repo")
    rc, out = snakemake(root, "--lint")
    assert rc == 0 and "Lints for" not in out, out[-6000:]


def test_snakefmt_check_passes():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", str(REPO / "workflow")],
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert proc.returncode == 0, proc.stdout[-6000:]


# --- publishing the findings --------------------------------------------------------------------

def test_publish_writes_the_findings_and_splices_them_into_the_readme(study_copy):
    from rnn.findings import BEGIN, END

    readme = study_copy / "README.md"
    readme.write_text(f"# A study\n\nBefore.\n\n{BEGIN.split(' (')[0]} -->\nstale\n{END}\n\nAfter.\n")
    out = ok(study_copy, "--cores", "2", "publish")
    assert [j["rule"] for j in jobs(out)].count("publish") == 1
    published = study_copy / "results/published"
    findings = (published / "findings.md").read_text()
    text = readme.read_text()
    assert text.startswith("# A study\n\nBefore.\n\n") and text.endswith("\n\nAfter.\n") and "stale" not in text
    block = text[text.index(BEGIN):text.index(END) + len(END)]
    # the findings' headline block; links relative to the README there, to results/published/ here
    from rnn.findings import block_of

    assert block.replace("results/published/", "") == block_of(findings) and findings.startswith(block_of(findings))
    for question in ("The number of hidden units", "The non-linearity", "Direct input→output connections"):
        assert f"#### {question}" in findings
    assert "#### Weight noise" not in findings  # no such axis in the tiny study
    for link in re.findall(r"\]\((figures/[^)]+)\)", findings):
        assert is_png(published / link), link
    assert {p.name for p in (published / "figures").iterdir()} == {
        *(f"ablation_{a}.png" for a in AXES), *(f"{f}.png" for f in STUDY_FIGURES)}
    assert json.loads((published / "attractor.json").read_text())["floors"]
    assert "#### What makes the network generate?" in findings and "One Lyapunov time is" in findings
    # no reservoir in this study: the RNN's target is judged, the reservoir's is not
    assert ("Target for the best RNN" in findings) and "Target for the reservoir" not in findings


def test_publish_refuses_a_readme_without_markers(study_copy):
    (study_copy / "README.md").write_text("# No markers here\n")
    rc, out = snakemake(study_copy, "--cores", "2", "publish")
    assert rc != 0 and "no findings block" in out
    assert (study_copy / "README.md").read_text() == "# No markers here\n"


# --- checking a rerun against what was published ------------------------------------------------

def test_publish_writes_the_data_behind_the_findings_and_verify_checks_a_rerun_against_it(study_copy):
    from rnn import provenance, settings
    from rnn.findings import BEGIN, END

    root, published = study_copy, study_copy / "results/published"
    (root / "README.md").write_text(f"# A study\n\n{BEGIN.split(' (')[0]} -->\n{END}\n")
    ok(root, "--cores", "2", "publish")
    for name in ("runs", "ablation"):  # the tables, byte for byte
        assert (published / f"tables/{name}.csv").read_bytes() == (root / f"results/tables/{name}.csv").read_bytes()
    config = yaml.safe_load((published / "config.yaml").read_text())
    assert config["seeds"] == TINY["seeds"] and config["ablations"] == TINY["ablations"]
    assert config["data"] == {**TINY["data"], "seed": [0], "lyapunov": None}  # with the schema's defaults
    assert config["baseline"] == {**settings.BASELINE, **TINY["baseline"]}
    environment = json.loads((published / "environment.json").read_text())
    assert environment == provenance.environment()  # this machine, this installation
    assert set(environment["packages"]) >= {"pytensor", "jax", "numpy", "scipy", "snakemake"}

    # the unchanged study verifies, to the bit, and nothing is recomputed or republished
    out = ok(root, "--cores", "2", "verify")
    assert [j["rule"] for j in jobs(out)] == ["verify"]
    assert "Environment: the same software versions and CPU as the published record" in out
    assert "moved within sampling 0, failed 0." in out and "| contender: the tutorial's recipe |" in out
    assert "Bit-identical, timing columns aside: yes." in out and "verify: OK" in out
    assert "verify: OK" in (root / "logs/verify.log").read_text()

    # a published value and a published status changed: both named, and the exit status says so
    runs = pd.read_csv(published / "tables/runs.csv")

    def run(variant, optimizer, seed):
        return (runs["variant"] == variant) & (runs["optimizer"] == optimizer) & (runs["seed"] == seed)

    runs.loc[run("baseline", "sgd", 0), "val_mse"] *= 1.1
    status = runs.loc[run("hidden-3", "bfgs", 1), "status"].item()
    runs.loc[run("hidden-3", "bfgs", 1), "status"] = "diverged" if status != "diverged" else "ok"
    runs.to_csv(published / "tables/runs.csv", index=False)
    edited = (published / "tables/runs.csv").read_bytes()
    # a rerun of the study is checked against what was published, which is never republished first
    assert set(planned(root, "verify", "--forcerun", "aggregate")) == {"aggregate", "verify"}
    rc, out = snakemake(root, "--cores", "2", "verify")
    assert rc != 0, out[-3000:]
    assert [j["rule"] for j in jobs(out)] == ["verify"]
    assert "\n- baseline, data seed 0, sgd, seed 0, val_mse: " in out
    assert f"\n- hidden-3, data seed 0, bfgs, seed 1, status: {status!r} here against " in out
    assert "verify: FAILED, 2 number(s) and 0 conclusion(s) differ beyond sampling." in out
    assert (published / "tables/runs.csv").read_bytes() == edited


# --- the model's own exponent --------------------------------------------------------------------

def test_each_models_own_exponent_is_measured_from_its_saved_weights(study):
    """runs.csv's lyapunov_model is rnn.exponents.rnn_exponent of the saved weights, from the first test
    start points' warm-ups, as long as the long free runs."""
    from rnn import io
    from rnn.exponents import rnn_exponent
    from rnn.experiment import EXPONENT_CHAINS, starts_in_test
    from rnn.generation import warmup_inputs

    runs = read_runs(study)
    assert runs.loc[runs["status"] == "ok", "lyapunov_model"].notna().all()
    params = io.load_npz(study / run_dir("skip-true") / "params.npz")
    stacked = {name.split("/")[1]: v for name, v in params.items() if name.startswith("bfgs/")}
    series = io.load_series(study / "results/data/series-0.npz")
    data, gen, longterm = TINY["data"], TINY["generation"], TINY["longterm"]
    starts = starts_in_test(gen, data["train"], data["validation"])[:EXPONENT_CHAINS]
    own = rnn_exponent(stacked, "tanh", warmup_inputs(series, starts, gen["warmup"]), steps=longterm["steps"],
                       transient=longterm["discard"])
    rows = runs[(runs["variant"] == "skip-true") & (runs["optimizer"] == "bfgs")].sort_values("seed")
    assert np.array_equal(rows["lyapunov_model"].to_numpy(), own["exponent"], equal_nan=True)
