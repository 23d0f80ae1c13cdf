"""What a change reruns, on the finished tiny study: dry runs (``snakemake -n``) of private copies of it.

A job is keyed on what it computes: its params in canonical form (``rnn.settings.resolve``) and its code
without comments or docstrings (``rnn.provenance.code_digest``). So restating a value, spelling a number
another way, rewording a docstring or deleting a derived file reruns no training job; a real change reruns
exactly the jobs it touches.
"""

import copy

import pytest
import yaml

from helpers import TINY, ok, planned, write_config

TRAINED = ["baseline,0", "hidden-3,0", "lr-0.1,0", "nonlinearity-relu,0", "skip-true,0"]
DERIVED = {"aggregate", "plot_variant", "plot_ablation", "figures", "summary", "all"}


def nothing_to_do(root, *args):
    out = ok(root, "-n", *args)
    assert "Nothing to be done" in out, out[-4000:]


def configfile(root, text, name="extra"):
    path = root / f"{name}.yaml"
    path.write_text(text)
    return str(path)


# --- params that identify the computation -------------------------------------------------------

RESTATED = {  # id: a --configfile that says what is already in force, in other words
    "data-section": "data: {seed: [0], tau: 17}\n",
    "single-seed-as-list": "data: {seed: [0]}\n",
    "exponent-without-a-dot": "baseline: {l2: 1e-4}\n",  # PyYAML reads 1e-4 as a string
    "decimal": "baseline: {l2: 0.0001, bfgs_gtol: 0.00000001}\n",
    "integer-for-a-float": "baseline: {l1: 0, weight_noise: 0, lr: 0.3}\n",
    "float-for-an-integer": "baseline: {epochs: 30.0, hidden: 6.0}\n",
    "defaults-restated": "generation: {starts: 3}\nlongterm: {seed: 10000, bins: 20}\nbackend: jax\n",
}


def test_restating_the_config_in_merged_files_reruns_nothing(study_copy):
    """Each restatement as its own --configfile, merged over the study's config one after another."""
    files = [configfile(study_copy, text, name) for name, text in RESTATED.items()]
    nothing_to_do(study_copy, *[arg for f in files for arg in ("--configfile", f)])


def test_restating_the_config_in_a_replacing_file_reruns_nothing(study_copy):
    """The whole config in one file, every restatement in it, keys in another order."""
    config = copy.deepcopy(TINY)
    for text in RESTATED.values():
        for key, value in yaml.safe_load(text).items():
            config[key] = {**config[key], **value} if isinstance(value, dict) else value
    text = yaml.safe_dump(dict(reversed(list(config.items()))), sort_keys=True)
    nothing_to_do(study_copy, "--configfile", configfile(study_copy, text), "--replace-workflow-config")


def test_a_partial_config_replacing_the_default_runs_with_the_documented_defaults(study_copy):
    """The tiny study's config left out every key it had at its default: saying them now changes nothing,
    whether written into the file or left for the schema to fill in."""
    partial = {k: v for k, v in TINY.items() if k not in ("curve_every", "backend")}
    nothing_to_do(study_copy, "--configfile", configfile(study_copy, yaml.safe_dump(partial)),
                  "--replace-workflow-config")


@pytest.mark.parametrize("mode", ["merged", "replaced"])
def test_a_real_change_reruns_exactly_the_jobs_it_touches(study_copy, mode):
    change = {"baseline": {"lr": 0.2}}  # every variant but lr-0.1 inherits the baseline's lr
    if mode == "merged":
        plan = planned(study_copy, "--configfile", configfile(study_copy, yaml.safe_dump(change)))
    else:
        config = copy.deepcopy(TINY)
        config["baseline"]["lr"] = 0.2
        plan = planned(study_copy, "--configfile", configfile(study_copy, yaml.safe_dump(config)),
                       "--replace-workflow-config")
    assert plan["train"] == [j for j in TRAINED if not j.startswith("lr-")]
    assert set(plan) == {"train"} | DERIVED


# --- code tracked by what it computes ---------------------------------------------------------------

def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_rewording_docstrings_and_comments_or_reformatting_reruns_nothing(study_copy):
    for module in ("metrics", "compiled", "__init__"):  # a module of the train jobs, of the graphs, of every job
        path = study_copy / "rnn" / f"{module}.py"
        text = path.read_text()
        if '"""' in text:
            first = text.index('"""') + 3
            text = text[:first] + "Reworded by a test. " + text[first:]  # the module's docstring
        else:  # an empty package __init__
            text = '"""A docstring added by a test."""\n# and a comment\n' + text
        text = text.replace("\ndef ", "\n# a comment added by a test\n\n\ndef ", 1)  # a comment, blank lines
        text = text.replace("    return ", "    return  ", 1)  # layout
        path.write_text(text + "\n\n# a trailing comment\n")
    nothing_to_do(study_copy)


def test_a_real_edit_of_metrics_reruns_the_jobs_that_use_it(study_copy):
    edit(study_copy / "rnn/metrics.py", '"""', '"""Reworded. ')
    with open(study_copy / "rnn/metrics.py", "a") as f:
        f.write("\nEDITED_BY_A_TEST = 1\n")
    plan = planned(study_copy)
    assert plan["train"] == TRAINED
    assert set(plan) == {"train"} | DERIVED  # not the series, the exponent or the attractor


def test_editing_a_rules_script_reruns_that_rule(study_copy):
    with open(study_copy / "scripts/aggregate.py", "a") as f:
        f.write("\nEDITED_BY_A_TEST = 1\n")
    plan = planned(study_copy)
    assert "train" not in plan and {"aggregate", "summary"} <= set(plan)


# --- derived files never retrain ----------------------------------------------------------------------

@pytest.mark.parametrize("what", ["figure", "ablation figure", "table", "summary", "benchmark record",
                                  "every benchmark record"])
def test_deleting_or_editing_derived_files_rebuilds_only_what_reads_them(study_copy, what):
    root = study_copy
    if what == "figure":
        (root / "results/figures/valid_time.png").unlink()
        expected = {"figures", "summary", "all"}
    elif what == "ablation figure":
        (root / "results/figures/ablation/hidden.png").unlink()
        expected = {"plot_ablation", "summary", "all"}
    elif what == "table":
        with open(root / "results/tables/runs.csv", "a") as f:  # edited (a blank line): what reads it reruns
            f.write("\n")
        expected = {"plot_ablation", "figures", "summary", "all"}
    elif what == "summary":
        (root / "results/summary.md").unlink()
        expected = {"summary", "all"}
    elif what == "benchmark record":
        (root / "benchmarks/train/baseline/data-0.tsv").unlink()
        expected = set()
    else:
        for record in (root / "benchmarks").rglob("*.tsv"):
            record.unlink()
        expected = set()
    plan = planned(root)
    assert "train" not in plan and "data" not in plan
    assert set(plan) == expected
    if what.endswith("record"):  # and when the summary is rebuilt for another reason, it still retrains nothing
        (root / "results/summary.md").unlink()
        assert set(planned(root)) == {"summary", "all"}


def test_a_deleted_training_output_reruns_only_its_job(study_copy):
    (study_copy / "results/runs/hidden-3/data-0/params.npz").unlink()
    assert planned(study_copy)["train"] == ["hidden-3,0"]


# --- the everyday loop ----------------------------------------------------------------------------------

def test_the_everyday_loop_trains_one_job_and_leaves_the_study_as_it_was(study):
    from rnn import everyday

    before = {p: p.stat().st_mtime_ns for p in (study / "results").rglob("*") if p.is_file()}
    result = everyday.measure(study, "hidden", cores=2)
    assert result["variant"] == "hidden-7" and result["planned"]["train"] == 1 and result["train_jobs"] == 1
    assert {"aggregate", "plot_variant", "plot_ablation", "figures", "summary"} <= set(result["planned"])
    assert 0 < result["train_seconds"] < result["seconds"]
    assert "| loop / training |" in everyday.markdown(result)
    after = {p: p.stat().st_mtime_ns for p in (study / "results").rglob("*") if p.is_file()}
    assert after == before and not list(study.glob("everyday-*"))
