"""The study on SLURM: the real Snakemake CLI with profiles/slurm against a live single-node cluster.

The cluster is ``.ci/slurm/cluster``'s (docs/cluster.md). ``.ci/run`` starts it for CI and sets
RNN_STUDY_REQUIRE_SLURM=1; elsewhere the ``cluster`` fixture starts it where SLURM is installed and
we are root, and stops it afterwards. Without a cluster the cluster tests are skipped, saying why;
with RNN_STUDY_REQUIRE_SLURM=1 they fail instead. The checks of the profile itself need no cluster.

What ran as a cluster job is read from the cluster: ``squeue --states=all`` lists every job of the
last MinJobAge (600 s on the test cluster) with the name the plugin gives all jobs of one run (its
"SLURM run ID") and the comment it gives each, ``rule_<rule>[_wildcards_<values>]``.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from helpers import REPO, TINY, copy_repo, copy_study, ok, read_runs, snakemake, snakemake_env
from rnn import provenance, resources

REQUIRED = "RNN_STUDY_REQUIRE_SLURM"
SCRIPT = REPO / ".ci/slurm/cluster"
# smaller than TINY: two variants, one seed, SGD only
SMALL = {**copy.deepcopy(TINY), "seeds": [0], "optimizers": ["sgd"], "ablations": {"hidden": [3]},
         "baseline": {**TINY["baseline"], "epochs": 20}}
SMALL_RULES = {"data", "lyapunov", "attractor", "train", "aggregate", "plot_variant", "plot_ablation", "figures", "summary"}
PROFILE = ("--workflow-profile", "profiles/slurm")
# The profile waits 40 s after a job's end before asking squeue again, which spares a shared
# cluster's scheduler and would make each test here minutes longer. The test cluster's MinJobAge
# (600 s) stays above 3 x 2 s, so the plugin keeps to squeue.
FAST = ("--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2")


# --- the cluster ----------------------------------------------------------------------------------

def run(*command, timeout=120):
    return subprocess.run(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def cluster_problem():
    """None when a SLURM cluster answers and has a node up, else what is missing."""
    if not shutil.which("sinfo"):
        return "SLURM is not installed here (no sinfo)"
    proc = run("sinfo", "--noheader", "--format=%T")
    if proc.returncode != 0:
        return f"no SLURM cluster answers (sinfo: {proc.stderr.strip()})"
    if not set(proc.stdout.split()) & {"idle", "mixed", "allocated"}:
        return f"the cluster has no node up (sinfo: {' '.join(proc.stdout.split())})"
    return None


@pytest.fixture(scope="session")
def cluster():
    problem, started = cluster_problem(), False
    if problem and os.geteuid() == 0 and all(shutil.which(d) for d in ("slurmctld", "slurmd", "munged")):
        proc = run(str(SCRIPT), "start", timeout=300)
        started = True
        problem = cluster_problem() if proc.returncode == 0 else f"{SCRIPT} start failed: {proc.stderr[-3000:]}"
    try:
        if problem:
            why = (f"{problem}; `.ci/slurm/cluster start` (as root, on Debian) installs and starts a "
                   "single-node cluster")
            if os.environ.get(REQUIRED) == "1":
                pytest.fail(f"{REQUIRED}=1, but {why}")
            pytest.skip(why)
        yield
    finally:
        if started:
            run(str(SCRIPT), "stop")


def squeue(*args):
    proc = run("squeue", "--noheader", "--states=all", *args)
    assert proc.returncode == 0, proc.stderr
    return [line.split("|") for line in proc.stdout.splitlines() if line.strip()]


def cluster_jobs(out):
    """Counter of (comment, state) of the jobs the cluster ran for the Snakemake run that printed ``out``."""
    found = re.findall(r"SLURM run ID: (\S+)", out)
    assert len(found) == 1, out[-3000:]
    return Counter(map(tuple, squeue("--name", found[0], "--format=%k|%T")))


def submitted(out):
    """Counter of the comments the plugin gives the jobs Snakemake ran as cluster jobs, and the local rules."""
    remote, local = Counter(), set()
    for is_local, rule, body in re.findall(r"^(local)?rule (\w+):\n((?:    .*\n)*)", out, re.M):
        if is_local:
            local.add(rule)
            continue
        wildcards = re.search(r"^    wildcards: (.*)$", body, re.M)
        values = [kv.split("=", 1)[1] for kv in wildcards.group(1).split(", ")] if wildcards else []
        remote[f"rule_{rule}" + (f"_wildcards_{'_'.join(values)}" if values else "")] += 1
    return remote, local


def rule_of(comment):
    return re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", comment).group(1)


def failures(out):
    """{rule: the fields of its 'Error in rule' block, and "slurm_log": the SLURM log it names} of a failed run."""
    found = {}
    for rule, body in re.findall(r"^Error in rule (\w+):\n((?:    .*\n)*)", out, re.M):
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, re.M))
        log = re.search(r"(\S+/\.snakemake/slurm_logs/rule_\w+/\S+\.log)", fields.get("log", ""))
        found[rule] = {**fields, "slurm_log": log and log.group(1)}
    return found


def same_runs(rerun, reference):
    """rnn.verify's report: the deterministic (SGD) runs of both tables to the last bit, or the differences."""
    proc = run(sys.executable, "-m", "rnn.verify", str(rerun / "results/tables/runs.csv"),
               str(reference / "results/tables/runs.csv"))
    assert proc.returncode == 0 and "Bit-identical, timing columns aside: yes." in proc.stdout, proc.stdout[-3000:]


# --- the profile (no cluster needed) --------------------------------------------------------------

def test_the_profile_sizes_every_cluster_rule_from_measurements(tmp_path):
    root = copy_repo(tmp_path / "repo")
    out = ok(root, "-n", "--forceall", *PROFILE, "all", "publish", "bench")
    profile = yaml.safe_load((root / "profiles/slurm/config.yaml").read_text())
    assert profile["slurm-status-command"] == "squeue", "without accounting, sacct never says a job ended"
    assert "slurm_account" not in profile["default-resources"]
    sizes, threads = profile["set-resources"], profile["set-threads"]
    text = (root / "profiles/slurm/config.yaml").read_text()
    # a dry run does not mark local jobs: all the jobs but the target all would be cluster jobs
    jobs = [(rule, body) for rule, body in re.findall(r"^rule (\w+):\n((?:    .*\n)*)", out, re.M) if rule != "all"]
    assert {rule for rule, _ in jobs} == SMALL_RULES | {"publish", "bench"}
    for rule, body in jobs:
        assert re.search(r"^    benchmark: benchmarks/", body, re.M), f"rule {rule} measures nothing"
        given = dict(kv.split("=", 1) for kv in re.search(r"^    resources: (.*)$", body, re.M).group(1).split(", "))
        assert (int(given["mem_mb"]), int(given["runtime"])) == (sizes[rule]["mem_mb"], sizes[rule]["runtime"]), rule
        assert rule in threads, rule
        # every rule of the default study is sized from a measurement (bench is not run by it)
        measured = re.search(rf"^  {rule}:  # (\d+) jobs?: max_rss", text, re.M)
        assert measured or rule == "bench", f"rule {rule} has no measured size: regenerate (docs/cluster.md)"


# --- the study on the cluster ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_study(tmp_path_factory):
    """SMALL run locally, started before the cluster's run and beside it: (root, process, output file)."""
    root = copy_repo(tmp_path_factory.mktemp("local"), SMALL)
    with open(root / "snakemake.out", "w") as output:
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=root, env=snakemake_env(),
                                text=True, stdout=output, stderr=subprocess.STDOUT)
    yield root, proc, root / "snakemake.out"
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def cluster_study(cluster, local_study, tmp_path_factory):
    """SMALL as a study of its own (--configfile, --replace-workflow-config) beside the default
    config/config.yaml, run on the cluster: (root, exit status, output)."""
    root = copy_repo(tmp_path_factory.mktemp("cluster"), yaml.safe_load((REPO / "config/config.yaml").read_text()))
    (root / "small.yaml").write_text(yaml.safe_dump(SMALL))
    rc, out = snakemake(root, *PROFILE, "--configfile", "small.yaml", "--replace-workflow-config", *FAST,
                        timeout=900)
    return root, rc, out


def test_the_study_runs_as_cluster_jobs(cluster_study):
    root, rc, out = cluster_study
    assert rc == 0, out[-6000:]
    remote, local = submitted(out)
    ran = cluster_jobs(out)
    # every job Snakemake ran as a cluster job, the cluster ran to completion; nothing else
    assert ran == Counter({(comment, "COMPLETED"): n for comment, n in remote.items()})
    assert {rule_of(c) for c, _ in ran} == SMALL_RULES and local == {"all"}
    # the jobs built the submitting run's study (replaced config), not config.yaml merged with it
    assert sorted(c for c, _ in ran if rule_of(c) == "train") == ["rule_train_wildcards_baseline_0",
                                                                 "rule_train_wildcards_hidden-3_0"]
    assert sorted(set(read_runs(root)["variant"])) == ["baseline", "hidden-3"]


def test_the_cluster_gives_the_same_results_as_a_local_run(cluster_study, local_study):
    root, rc, out = cluster_study
    assert rc == 0, out[-6000:]
    local, proc, output = local_study
    assert proc.wait(timeout=900) == 0, output.read_text()[-6000:]
    same_runs(root, local)


def test_every_cluster_job_measured_itself(cluster_study):
    root, rc, out = cluster_study
    assert rc == 0, out[-6000:]
    per_rule = Counter(rule_of(c) for c, _ in cluster_jobs(out).elements())
    measured = resources.measure(root / "benchmarks")["jobs"]
    assert {rule: int(n) for rule, n in measured.items()} == dict(per_rule)


def test_local_rules_stay_on_the_submitting_machine(cluster_study, tmp_path):
    root, rc, out = cluster_study
    assert rc == 0, out[-6000:]
    root = copy_study(root, tmp_path / "study")  # verify against this run's own tables, published
    published = root / "results/published"
    (published / "tables").mkdir(parents=True)
    shutil.copy(root / "results/tables/runs.csv", published / "tables/runs.csv")
    (published / "environment.json").write_text(json.dumps(provenance.environment()))
    out = ok(root, *PROFILE, "--configfile", "small.yaml", "--replace-workflow-config", *FAST, "verify")
    assert "localrule verify:" in out and "verify: OK" in out
    assert cluster_jobs(out) == Counter()


@pytest.mark.parametrize(("asked", "sbatch"), [({"gpu": 1}, "--gpus=1"), ({"gres": "gpu:1"}, "--gres=gpu:1")])
def test_the_gpu_request_reaches_sbatch(cluster_study, tmp_path, asked, sbatch):
    root, rc, out = cluster_study
    assert rc == 0, out[-6000:]
    root = copy_study(root, tmp_path / "study")
    profile = yaml.safe_load((root / "profiles/slurm/config.yaml").read_text())
    profile["set-resources"]["train"].update(asked)  # as the profile's comment says
    (root / "profiles/slurm/config.yaml").write_text(yaml.safe_dump(profile))
    # the test cluster has no GPU: sbatch refuses the jobs, and the plugin reports the call it made
    rc, out = snakemake(root, *PROFILE, "--configfile", "small.yaml", "--replace-workflow-config", *FAST,
                        "--forcerun", "train", "--until", "train")
    assert rc != 0
    calls = re.findall(r"sbatch call:\n\s+(sbatch .*)", out)
    assert len(calls) == 2 and all(sbatch in call.split() for call in calls), out[-4000:]
    assert "Invalid generic resource" in out


# --- faults ---------------------------------------------------------------------------------------

def scancel_when_running(root, comment, proc, deadline=600):
    """Cancel the job the cluster runs in ``root`` under ``comment`` once it runs (its log is open); its id."""
    start = time.monotonic()
    while time.monotonic() - start < deadline and proc.poll() is None:  # a safety net, not a timing
        for job, seen, workdir, state in squeue("--format=%i|%k|%Z|%T"):
            if seen == comment and workdir == str(root) and state == "RUNNING":
                assert run("scancel", job).returncode == 0
                return job
        time.sleep(0.2)
    raise AssertionError(f"the cluster never ran {comment}")


def test_faults_are_reported_the_others_finish_and_the_same_command_resumes(cluster_study, tmp_path):
    study, rc, out = cluster_study
    assert rc == 0, out[-6000:]
    root = copy_study(study, tmp_path / "faults")
    with open(root / "rnn/plots.py", "a") as f:  # an edit the plotting jobs see: they all run again
        f.write("\nEDITED = 1\n")  # code, not a comment: a comment reruns nothing
    command = [*PROFILE, "--configfile", "small.yaml", "--replace-workflow-config", *FAST]
    profile = root / "profiles/slurm/config.yaml"
    sized = profile.read_text()
    small = yaml.safe_load(sized)
    small["set-resources"]["plot_ablation"]["mem_mb"] = 100  # less than Snakemake itself needs
    profile.write_text(yaml.safe_dump(small))

    proc = subprocess.Popen([sys.executable, "-m", "snakemake", *command], cwd=root, env=snakemake_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cancelled = scancel_when_running(root, "rule_figures", proc)
    out = proc.communicate(timeout=900)[0]
    assert proc.returncode != 0, out[-6000:]

    failed = failures(out)
    assert set(failed) == {"figures", "plot_ablation"}, out[-6000:]
    figures, plot = failed["figures"], failed["plot_ablation"]
    assert figures["external_jobid"] == cancelled and "SLURM status is: 'CANCELLED'" in figures["message"]
    for fields in (figures, plot):  # each named with its SLURM log, which SLURM wrote
        assert fields["slurm_log"] and os.path.isfile(fields["slurm_log"]), fields
    assert re.search(rf"\*\*\* JOB {cancelled} ON \S+ CANCELLED AT", open(figures["slurm_log"]).read())
    assert re.search(r"exceeded (job )?memory limit", open(plot["slurm_log"]).read())
    assert re.search(r"^rule plot_ablation \(axis=hidden\) ran out of memory on the cluster \(SLURM job "
                     rf"{plot['external_jobid']}, log .*\): raise its mem_mb \(now 100\) in set-resources: "
                     r"plot_ablation: ", out, re.M), out[-3000:]
    assert "rule figures ran out" not in out  # a cancelled job ran out of nothing
    # the others finished
    assert cluster_jobs(out) == Counter({("rule_plot_variant_wildcards_baseline", "COMPLETED"): 1,
                                         ("rule_plot_variant_wildcards_hidden-3", "COMPLETED"): 1,
                                         ("rule_figures", "CANCELLED"): 1,
                                         ("rule_plot_ablation_wildcards_hidden", "FAILED"): 1})

    # memory raised back to the profile's, the same command runs only what is missing
    profile.write_text(sized)
    out = ok(root, *command, timeout=900)
    assert cluster_jobs(out) == Counter({(c, "COMPLETED"): 1 for c in (
        "rule_plot_ablation_wildcards_hidden", "rule_figures", "rule_summary")})
