"""Cluster resources from the study's own measurements, and which one to raise when a job ran out.

``measure(folder)`` reads Snakemake's benchmark files (``<folder>/<rule>.tsv`` or
``<folder>/<rule>/<wildcards…>.tsv``, one row per run of a job) into one row per rule: jobs, the
largest ``max_rss`` (MB), the longest wall time ``s`` and the largest ``cpu_time / s``. ``size``
turns a rule's row into what a cluster job asks for, with stated headroom:

- ``mem_mb`` = MEMORY_HEADROOM x the largest max_rss + SNAKEMAKE_MB, up to whole 100 MB. SLURM
  counts the Snakemake process that runs the job inside the job's step (190 MB measured on the
  test cluster), the benchmark does not;
- ``runtime`` (minutes) = TIME_HEADROOM x the longest wall time, at least MIN_RUNTIME (Snakemake
  starts twice on the node before the job does; another node may be slower);
- ``threads`` = the largest CPU time / wall time, rounded, at least 1.

``update_profile(text, table)`` rewrites the block between BEGIN and END of a profile's config.yaml
(its ``set-threads`` and ``set-resources``); other keys of a rule (``gpu``, ``slurm_partition``, …)
and rules without measurements stay as they were. ``out_of_resources(log_text)`` reads a failed
run's Snakemake log and says, for each cluster job that ran out of memory or time, what to raise.

CLI: ``python -m rnn.resources BENCHMARKS --profile profiles/slurm/config.yaml`` (docs/cluster.md).
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

from . import io

MEMORY_HEADROOM, SNAKEMAKE_MB = 1.5, 250
TIME_HEADROOM, MIN_RUNTIME = 2.0, 5
BEGIN = "# rnn.resources: begin"
END = "# rnn.resources: end"
SIZED = ("mem_mb", "runtime")


def measure(folder):
    """One row per rule (index) from the benchmark files under ``folder``: jobs, max_rss, s, cpu_ratio."""
    folder = Path(folder)
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        rule = path.relative_to(folder).parts[0].removesuffix(".tsv")
        # Snakemake writes "-" for what it could not measure (NaN here, left out of the maxima)
        table = io.load_csv(path, ["s", "max_rss", "cpu_time"], sep="\t")[["s", "max_rss", "cpu_time"]].apply(
            pd.to_numeric, errors="coerce")
        if table.empty or table[["s", "max_rss"]].isna().all().any():
            raise io.BadFileError(path, "holds no measurement of s and max_rss")
        rows.append(table.assign(rule=rule, cpu_ratio=table["cpu_time"] / table["s"].clip(lower=1e-9)))
    if not rows:
        raise io.BadFileError(folder, "holds no benchmark files (<rule>.tsv or <rule>/….tsv)")
    return pd.concat(rows).groupby("rule").agg(jobs=("s", "size"), max_rss=("max_rss", "max"), s=("s", "max"),
                                               cpu_ratio=("cpu_ratio", "max")).fillna({"cpu_ratio": 0.0})


def size(row):
    """{"threads", "mem_mb", "runtime"} for one rule's measurements (a row of ``measure``)."""
    return {"threads": max(1, round(row["cpu_ratio"])),
            "mem_mb": int(math.ceil((MEMORY_HEADROOM * row["max_rss"] + SNAKEMAKE_MB) / 100) * 100),
            "runtime": max(MIN_RUNTIME, int(math.ceil(TIME_HEADROOM * row["s"] / 60)))}


def update_profile(text, table, source="benchmarks"):
    """``text`` (a profile's config.yaml) with its generated block rewritten from ``table`` (``measure``)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the profile should hold one block from a line '{BEGIN}' to a line '{END}'")
    head, rest = text.split(BEGIN, 1)
    block, tail = rest.split("\n", 1)[1].split(END, 1)  # the block: after its BEGIN line, to END
    old = yaml.safe_load(block) or {}
    threads = dict(old.get("set-threads") or {})
    resources = {rule: dict(given) for rule, given in (old.get("set-resources") or {}).items()}
    notes = {}
    for rule, row in table.to_dict("index").items():
        sized, kept = size(row), {k: v for k, v in resources.get(rule, {}).items() if k not in SIZED}
        threads[rule] = sized["threads"]
        resources[rule] = {**{k: sized[k] for k in SIZED}, **kept}
        jobs = int(row["jobs"])
        notes[rule] = (f"{jobs} job{'s' * (jobs != 1)}: max_rss {row['max_rss']:.0f} MB, "
                       f"longest {row['s']:.0f} s, CPU/wall {row['cpu_ratio']:.2f}")
    lines = [f"{BEGIN} (`python -m rnn.resources {source} --profile …` wrote it; keys other than",
             "# threads, mem_mb and runtime, and rules without measurements, are kept when it is rewritten)",
             "set-threads:", *(f"  {r}: {n}" for r, n in sorted(threads.items())), "set-resources:"]
    for rule in sorted(resources):
        lines.append(f"  {rule}:  # {notes.get(rule, 'not measured: set by hand')}")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in resources[rule].items()]
    return head + "\n".join(lines) + "\n" + END + tail


ERROR = re.compile(r"^Error in rule (\w+):\n((?:    .*\n)*)", re.M)
JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", re.M)
CAUSES = {  # resource -> what SLURM says (the job's state, its log) when a job ran out of it
    "mem_mb": ("memory", re.compile(r"\bOUT_OF_MEMORY\b|exceeded (?:job )?memory limit|oom[-_]kill")),
    "runtime": ("time", re.compile(r"\bTIMEOUT\b|DUE TO TIME LIMIT")),
}


def _fields(body):
    return dict(re.findall(r"^    (\w+): (.*)$", body, re.M))


def out_of_resources(log_text):
    """One line per failed cluster job that ran out of memory or time: the job, its log, what to raise."""
    started = {}  # Snakemake's job id -> the fields printed when it was submitted
    for rule, body in JOB.findall(log_text):
        fields = _fields(body)
        started.setdefault(fields.get("jobid"), fields)
    advice = []
    for rule, body in ERROR.findall(log_text):
        fields = _fields(body)
        if "external_jobid" not in fields:  # a local job: SLURM set it no limit
            continue
        logs = [p.strip() for p in fields.get("log", "").split(" (check log")[0].split(",") if p.strip()]
        said = fields.get("message", "") + "".join(
            Path(p).read_text(errors="replace") for p in logs if Path(p).is_file())
        for resource, (what, pattern) in CAUSES.items():
            if pattern.search(said):
                job = started.get(fields.get("jobid"), {})
                now = dict(kv.split("=", 1) for kv in job.get("resources", "").split(", ") if "=" in kv).get(resource)
                wildcards = f" ({job['wildcards']})" if "wildcards" in job else ""
                advice.append(f"rule {rule}{wildcards} ran out of {what} on the cluster "
                              f"(SLURM job {fields.get('external_jobid', '?')}, log {logs[-1] if logs else '?'}): "
                              f"raise its {resource} (now {now or 'unset'}) in set-resources: {rule}: of the "
                              "cluster profile (profiles/slurm/config.yaml), or regenerate the sizes from the "
                              "benchmarks (docs/cluster.md); then rerun the same command.")
    return advice


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rnn.resources", description=(
        "Size each rule's cluster jobs (threads, mem_mb, runtime) from Snakemake's benchmark files, with "
        f"headroom: mem_mb = {MEMORY_HEADROOM} x max_rss + {SNAKEMAKE_MB} MB, runtime = {TIME_HEADROOM:g} x "
        f"the longest wall time (at least {MIN_RUNTIME} min), threads = CPU time / wall time."))
    parser.add_argument("benchmarks", metavar="BENCHMARKS", help="the folder of benchmark files, e.g. benchmarks")
    parser.add_argument("--profile", metavar="CONFIG", help=(
        "rewrite the generated block of this profile file (e.g. profiles/slurm/config.yaml); "
        "without it, print the sizes"))
    args = parser.parse_args(argv)
    try:
        table = measure(args.benchmarks)
    except io.BadFileError as exc:
        parser.error(f"BENCHMARKS {exc}")
    if not args.profile:
        sizes = pd.DataFrame({rule: size(row) for rule, row in table.to_dict("index").items()}).T
        sys.stdout.write(table.join(sizes).to_string() + "\n")
        return 0
    try:
        text = update_profile(Path(args.profile).read_text(), table, source=args.benchmarks)
    except (OSError, ValueError) as exc:
        parser.error(f"--profile {args.profile}: {exc}")
    io.save_text(args.profile, text)
    print(f"{args.profile}: sized {len(table)} rules from {int(table['jobs'].sum())} jobs in {args.benchmarks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
