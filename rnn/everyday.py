"""The everyday loop, measured: one ablation value added to a finished study, and what rerunning it costs.

    python -m rnn.everyday .                         # hidden: one more value, on the study in this folder
    python -m rnn.everyday . --key l2 --value 3e-4 --cores 2 --out results/benchmark/everyday.md

On a private copy of a finished study (its results hard-linked, so the copy is cheap and the study is
left as it was: Snakemake and ``rnn.io`` replace files, they never write into them), the config gets
one more value of an ablation axis (a ``--configfile`` merged into the study's config, as a user would).
A dry run lists what that reruns, which should be one training job per series the axis runs on, then the
tables, figures and summary; then ``snakemake --cores N`` runs it, timed. The report sets the loop's wall
time beside the new training job's own (its Snakemake benchmark record): the rest is the price of the
workflow around the one job that had to run (building the DAG, the tables, the figures, the summary).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from . import settings

TARGET = 2.0  # the loop's wall time over its training job's, at most
JOB_LINE = re.compile(r"^(\w+)\s+(\d+)$", re.M)


def _snakemake(root, *args):
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=root, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "MPLBACKEND": "Agg"})
    if proc.returncode:
        raise RuntimeError(f"snakemake {' '.join(args)} failed in {root}:\n{proc.stdout[-4000:]}")
    return proc.stdout


def planned_jobs(root, *args):
    """{rule: count} of what ``snakemake -n`` would run in ``root``."""
    out = _snakemake(root, "-n", "--quiet", "rules", *args)
    return {rule: int(n) for rule, n in JOB_LINE.findall(out) if rule != "total"}


def private_copy(root, dest):
    """``root``'s study in ``dest``: the results hard-linked, everything else copied."""
    linked = {"results"}  # logs and benchmark records are small, and Snakemake writes into them
    for item in root.iterdir():
        if item.name in (".git", ".venv") or item.name.startswith("everyday-"):
            continue
        target = dest / item.name
        if item.is_dir():
            copy = os.link if item.name in linked else shutil.copy2
            shutil.copytree(item, target, copy_function=copy, symlinks=True)
        else:
            shutil.copy2(item, target)
    return dest


def added_value(config, key):
    """A value of ``key`` the study does not ask yet: the baseline's value plus or times a step."""
    asked = (config.get("ablations") or {}).get(key, [])
    value = config["baseline"][key]
    while value in asked or value == config["baseline"][key]:
        value = value + 1 if isinstance(value, int) and not isinstance(value, bool) else value * 3
    return value


def measure(root, key="hidden", value=None, cores=2):
    """Add ``value`` to the study's ``ablations.key`` in a private copy and time the rerun: a dict of the
    jobs planned, the loop's seconds, the new training jobs' seconds and their ratio."""
    root = Path(root).resolve()
    config = settings.load(root / "config/config.yaml")
    if key not in settings.SETTING_KEYS:
        raise ValueError(f"--key {key!r} is not a setting; allowed: {', '.join(settings.SETTING_KEYS)}")
    value = added_value(config, key) if value is None else settings.coerce(
        yaml.safe_load(str(value)), settings.definition("setting_properties")["properties"][key], strings=True)
    if planned_jobs(root):
        raise RuntimeError(f"the study in {root} is not finished (a dry run plans jobs): run it first")
    with tempfile.TemporaryDirectory(prefix="everyday-", dir=root) as tmp:
        study = private_copy(root, Path(tmp))
        values = [*(config.get("ablations") or {}).get(key, []), value]
        extra = study / "everyday.yaml"
        extra.write_text(yaml.safe_dump({"ablations": {key: values}}))
        plan = planned_jobs(study, "--configfile", str(extra))
        t0 = time.perf_counter()
        _snakemake(study, "--cores", str(cores), "--configfile", str(extra))
        seconds = time.perf_counter() - t0
        name = f"{key}-{settings.format_value(value)}"
        records = sorted((study / "benchmarks/train" / name).glob("data-*.tsv"))
        train = sum(float(r.read_text().splitlines()[1].split("\t")[0]) for r in records)
    return {"key": key, "value": value, "variant": name, "planned": plan, "seconds": seconds,
            "train_seconds": train, "train_jobs": len(records), "ratio": seconds / train if train else float("nan")}


def markdown(result):
    plan = ", ".join(f"{rule} {n}" for rule, n in result["planned"].items())
    return "\n".join([
        "# The everyday loop", "",
        f"One value added to `ablations.{result['key']}` of a finished study (variant `{result['variant']}`).", "",
        "| jobs planned | loop (s) | its training jobs (s) | loop / training | target |",
        "|---|---|---|---|---|",
        f"| {plan} | {result['seconds']:.1f} | {result['train_seconds']:.1f} ({result['train_jobs']} job(s)) "
        f"| {result['ratio']:.2f} | <= {TARGET:g} |", ""])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", help="the folder of a finished study (the repository root)")
    ap.add_argument("--key", default="hidden", help="the ablation axis to add a value to (a baseline key)")
    ap.add_argument("--value", help="the value to add (YAML); default: one the study does not ask yet")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", help="also write the report (Markdown) here")
    args = ap.parse_args(argv)
    result = measure(args.study, args.key, args.value, args.cores)
    text = markdown(result)
    print(text)
    if args.out:
        from .io import save_text

        save_text(args.out, text)


if __name__ == "__main__":
    main()
