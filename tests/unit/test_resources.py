"""rnn.resources: cluster sizes from benchmark files, the profile's generated block, and what to raise
when a cluster job ran out of memory or time (texts as Snakemake 9, its SLURM plugin 2.8 and SLURM 22.05
write them)."""

import pytest
import yaml

from rnn import io, resources

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path, *rows):
    """A Snakemake benchmark file with one (s, max_rss, cpu_time) row per run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t1\t{cpu}\n" for s, rss, cpu in rows))


@pytest.fixture
def benchmarks(tmp_path):
    folder = tmp_path / "benchmarks"
    bench(folder / "data.tsv", (1.2, 72.3, 0.4))
    bench(folder / "train/baseline.tsv", (10.0, 400.0, 6.0))
    bench(folder / "train/hidden-60.tsv", (700.0, 1300.0, 1050.0), (600.0, 1200.0, 300.0))  # two runs
    bench(folder / "train/series-1/baseline.tsv", (20.0, 350.0, "-"))  # a deeper path; CPU time not measured
    bench(folder / "plot_variant/baseline.tsv", (3.0, "-", 2.0), (2.0, 150.0, 1.0))
    return folder


def test_measure_takes_the_largest_of_each_rule(benchmarks):
    table = resources.measure(benchmarks)
    assert sorted(table.index) == ["data", "plot_variant", "train"]
    train = table.loc["train"]
    assert (train["jobs"], train["max_rss"], train["s"], train["cpu_ratio"]) == (4, 1300.0, 700.0, 1.5)
    assert table.loc["plot_variant", "max_rss"] == 150.0 and table.loc["plot_variant", "jobs"] == 2


def test_size_adds_the_stated_headroom(benchmarks):
    table = resources.measure(benchmarks)
    # 1.5 x 1300 + 250 = 2200 MB; 2 x 700 s = 23.3 -> 24 min; 1050 / 700 CPU-s a second -> 2 threads
    assert resources.size(table.loc["train"]) == {"threads": 2, "mem_mb": 2200, "runtime": 24}
    # 1.5 x 72.3 + 250 = 358.45 -> 400 MB; 2.4 s -> the 5 minutes' floor; a third of a CPU -> 1 thread
    assert resources.size(table.loc["data"]) == {"threads": 1, "mem_mb": 400, "runtime": 5}


@pytest.mark.parametrize(("files", "problem"), [
    ({}, "holds no benchmark files"),
    ({"data.tsv": "s\tmax_rss\n1.0\t70\n"}, "lacks the columns cpu_time"),
    ({"data.tsv": HEADER}, "holds no measurement of s and max_rss"),
    ({"data.tsv": HEADER + "-\t0\t-\t1\t1\t1\t0\t0\t1\t-\n"}, "holds no measurement of s and max_rss"),
    ({"data.tsv": HEADER + "1.0\t0:00:01\t70"}, "truncated"),
])
def test_measure_names_the_bad_file(tmp_path, files, problem):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(io.BadFileError, match=problem) as err:
        resources.measure(tmp_path)
    assert err.value.path == (tmp_path / next(iter(files)) if files else tmp_path)


PROFILE = """executor: slurm
default-resources:
  mem_mb: 2000
# the GPU: add gpu: 1 under train
# rnn.resources: begin (an old header line)
set-threads:
  bench: 2
set-resources:
  bench:
    mem_mb: 8000
    runtime: 120
  train:
    mem_mb: 1
    runtime: 1
    gpu: 1
    gpu_model: h100
# rnn.resources: end
jobs: 100
"""


def test_update_profile_rewrites_its_block_only(benchmarks):
    table = resources.measure(benchmarks)
    text = resources.update_profile(PROFILE, table)
    head, tail = PROFILE.split(resources.BEGIN)[0], PROFILE.split(resources.END)[1]
    assert text.startswith(head) and text.endswith(resources.END + tail)
    profile = yaml.safe_load(text)
    assert profile["set-threads"] == {"bench": 2, "data": 1, "plot_variant": 1, "train": 2}
    assert profile["set-resources"] == {
        "bench": {"mem_mb": 8000, "runtime": 120},  # not measured: as it was
        "data": {"mem_mb": 400, "runtime": 5},
        "plot_variant": {"mem_mb": 500, "runtime": 5},
        "train": {"mem_mb": 2200, "runtime": 24, "gpu": 1, "gpu_model": "h100"},  # the GPU kept
    }
    assert profile["jobs"] == 100 and profile["default-resources"] == {"mem_mb": 2000}
    assert "  train:  # 4 jobs: max_rss 1300 MB, longest 700 s, CPU/wall 1.50\n" in text
    assert "  bench:  # not measured: set by hand\n" in text
    assert resources.update_profile(text, table) == text  # rewriting it again changes nothing


@pytest.mark.parametrize("text", ["executor: slurm\n", PROFILE + resources.BEGIN + "\n" + resources.END + "\n",
                                  PROFILE.replace(resources.END, "# the end")])
def test_update_profile_refuses_a_profile_without_one_block(benchmarks, text):
    with pytest.raises(ValueError, match="one block from a line '# rnn.resources: begin'"):
        resources.update_profile(text, resources.measure(benchmarks))


def test_cli_rewrites_the_profile_atomically_and_names_a_bad_folder(benchmarks, tmp_path, capsys):
    profile = tmp_path / "config.yaml"
    profile.write_text(PROFILE)
    assert resources.main([str(benchmarks), "--profile", str(profile)]) == 0
    assert "sized 3 rules from 7 jobs" in capsys.readouterr().out
    assert yaml.safe_load(profile.read_text())["set-resources"]["data"] == {"mem_mb": 400, "runtime": 5}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(SystemExit):
        resources.main([str(tmp_path / "missing")])
    assert "BENCHMARKS" in capsys.readouterr().err


# --- what to raise ------------------------------------------------------------------------------

def submitted(jobid, rule, wildcards, mem_mb, runtime):
    return (f"[Mon Nov 30 14:02:00 2026]\nrule {rule}:\n    input: a\n    output: b\n    log: logs/{rule}.log\n"
            f"    jobid: {jobid}\n    benchmark: benchmarks/{rule}.tsv\n    reason: Missing output files: b\n"
            + (f"    wildcards: {wildcards}\n" if wildcards else "")
            + f"    resources: tmpdir=<TBD>, mem_mb={mem_mb}, mem=1 GB, disk_mb=1000, runtime={runtime}\n"
            "Shell command: None\n")


def failed(jobid, rule, slurm_id, status, slurm_log):
    return (f"[Mon Nov 30 14:03:00 2026]\nError in rule {rule}:\n"
            f"    message: SLURM-job '{slurm_id}' failed, SLURM status is: '{status}'. Detailed failure reason "
            "unavailable (status command is not 'sacct').For further error details see the cluster/cloud log "
            "and the log files of the involved rule(s).\n"
            f"    jobid: {jobid}\n    input: a\n    output: b\n"
            f"    log: logs/{rule}.log, {slurm_log} (check log file(s) for error details)\n"
            f"    external_jobid: {slurm_id}\n")


def test_out_of_resources_says_what_to_raise(tmp_path):
    logs = tmp_path / ".snakemake/slurm_logs"
    oom, timeout, cancelled, broken = (logs / f"{n}.log" for n in (5, 6, 7, 8))
    logs.mkdir(parents=True)
    # memory enforced by polling (jobacct_gather): the job ends FAILED, its log says why
    oom.write_text("slurmstepd-vm: error: StepId=5.0 exceeded memory limit (411922432 > 104857600), being killed\n"
                   "slurmstepd-vm: error: Exceeded job memory limit\nsrun: error: vm: task 0: Killed\n")
    timeout.write_text("slurmstepd-vm: error: *** JOB 6 ON vm CANCELLED AT 2026-11-30T13:56:53 DUE TO TIME LIMIT ***\n")
    cancelled.write_text("slurmstepd-vm: error: *** JOB 7 ON vm CANCELLED AT 2026-11-30T14:01:02 ***\n")
    broken.write_text("Traceback (most recent call last):\nValueError: bad series\n")
    log = (submitted(1, "plot_variant", "variant=baseline", 100, 30) + submitted(2, "train", "variant=hidden-60", 4000, 1)
           + submitted(3, "aggregate", None, 2000, 30) + submitted(4, "data", None, 2000, 30)
           + failed(1, "plot_variant", 5, "FAILED", oom) + failed(2, "train", 6, "TIMEOUT", timeout)
           + failed(3, "aggregate", 7, "CANCELLED", cancelled) + failed(4, "data", 8, "FAILED", broken))
    advice = resources.out_of_resources(log)
    assert len(advice) == 2, advice
    assert advice[0].startswith(f"rule plot_variant (variant=baseline) ran out of memory on the cluster (SLURM job 5, "
                                f"log {oom}): raise its mem_mb (now 100) in set-resources: plot_variant: ")
    assert advice[1].startswith(f"rule train (variant=hidden-60) ran out of time on the cluster (SLURM job 6, "
                                f"log {timeout}): raise its runtime (now 1) in set-resources: train: ")
    # on a cluster that confines memory with cgroups the state says it, and the log may be gone
    log = submitted(9, "figures", None, 700, 5) + failed(9, "figures", 12, "OUT_OF_MEMORY", logs / "12.log")
    assert resources.out_of_resources(log) == [
        f"rule figures ran out of memory on the cluster (SLURM job 12, log {logs / '12.log'}): raise its mem_mb "
        "(now 700) in set-resources: figures: of the cluster profile (profiles/slurm/config.yaml), or regenerate "
        "the sizes from the benchmarks (docs/cluster.md); then rerun the same command."]
    assert resources.out_of_resources("Building DAG of jobs...\nNothing to be done.\n") == []


def test_out_of_resources_says_nothing_of_local_jobs(tmp_path):
    log = tmp_path / "logs/train/baseline.log"
    log.parent.mkdir(parents=True)
    log.write_text("Traceback (most recent call last):\nTimeoutError: the cache lock timed out (timeout 1200 s)\n")
    text = (submitted(2, "train", "variant=baseline", 2000, 30)
            + f"Error in rule train:\n    jobid: 2\n    input: a\n    output: b\n    log: {log} (check log file(s) "
            "for error details)\n    wildcards: variant=baseline\n")
    assert resources.out_of_resources(text) == []
