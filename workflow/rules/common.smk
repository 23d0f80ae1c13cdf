import json
import os
import re
import socket
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Jobs import the `rnn` package that sits next to this workflow (also in a copy of the repository).
REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO))
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
)

from rnn import anchors as anchor_protocols
from rnn import backends, io, provenance, resources, settings

# glibc's malloc keeps freed buffers for the next call instead of faulting them back in from the
# kernel (rnn/backends.py, MALLOC_TUNABLES): read when a process starts, so set here, where every
# job's process (and a cluster job's, which inherits this environment) is started from.
backends.malloc_environment()

# --- the config of a cluster job --------------------------------------------------------------
# A cluster executor re-invokes Snakemake for each job with the run's --configfiles and --config,
# but never with --replace-workflow-config: a job of a study run with `--configfile small.yaml
# --replace-workflow-config` would merge small.yaml into config/config.yaml and build another study
# (other variants, other settings). So the run that submits the jobs puts the config it resolved in
# the environment, which the job inherits (the SLURM plugin submits with --export=ALL), and the job
# takes that config instead of its own: merged or replaced, jobs run the submitting run's study.
JOB_CONFIG = "RNN_STUDY_JOB_CONFIG"
if workflow.is_main_process:
    # not validated yet (it is below, in the run and in each job)
    os.environ[JOB_CONFIG] = json.dumps(config, default=str)
elif JOB_CONFIG in os.environ:
    config.clear()
    config.update(json.loads(os.environ[JOB_CONFIG]))

# --- resuming after a kill --------------------------------------------------------------------
# Snakemake locks the working directory while it runs and a SIGKILL leaves those locks behind;
# they record no process, so the next run would stop and ask for `snakemake --unlock`. Each run
# records its host and process id once it holds the locks (onstart); a later run on the same host
# removes the locks when that process is gone and nothing has locked since (locks newer than the
# record belong to a run still starting up, and are left alone). Locks taken on another host (a
# cluster's shared filesystem) are never removed: that process cannot be seen from here.
LOCKS = Path(".snakemake/locks")
LOCK_OWNER = Path(".snakemake/lock-owner.json")


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(
        os.sep, "proc", str(pid), "cmdline"
    )  # Linux: is it still a snakemake?
    return not cmdline.exists() or b"snakemake" in cmdline.read_bytes()


def lock_owner():
    """(host, pid) of the run that last took the locks, or None if unrecorded or unreadable."""
    try:
        owner = io.load_json(LOCK_OWNER)
        return str(owner["host"]), int(owner["pid"])
    except (io.BadFileError, KeyError, TypeError, ValueError):
        return None


def clear_stale_locks():
    locks = list(LOCKS.glob("*.lock")) if LOCKS.is_dir() else []
    owner = lock_owner() if locks else None
    if owner is None:
        return
    host, pid = owner
    if host != socket.gethostname():
        print(
            f"The locks in {LOCKS} were taken by process {pid} on host {host}, which cannot be "
            "checked from here; they are left alone. Once you are sure that no Snakemake run "
            "is alive there, run `snakemake --unlock`.",
            file=sys.stderr,
        )
        return
    newest_lock = max(f.stat().st_mtime for f in locks)
    if process_alive(pid) or newest_lock > LOCK_OWNER.stat().st_mtime:
        return
    for f in locks:
        f.unlink(missing_ok=True)
    print(
        f"Removed the locks left by an earlier run (process {pid}) that was killed.",
        file=sys.stderr,
    )


if workflow.is_main_process:  # not in the jobs a cluster runs on other hosts
    clear_stale_locks()


onstart:
    io.save_json(LOCK_OWNER, {"host": socket.gethostname(), "pid": os.getpid()})


# A cluster job that ran out of memory or time fails with its SLURM state (or only a line in its
# SLURM log, where memory is enforced by polling): say which resource of which rule to raise.
onerror:
    if workflow.is_main_process:
        for path in filter(os.path.isfile, log):
            text = Path(path).read_text(errors="replace")
            for line in resources.out_of_resources(text):
                print(line, file=sys.stderr)


# One validation, one set of defaults (rnn/settings.py, from workflow/schemas/config.schema.yaml): the
# config resolved there is what every rule reads, merged or replaced alike, with every number typed
# and every block in the schema's order, so that restating a value changes no job's params.
try:
    RESOLVED = settings.resolve(config)
except settings.ConfigError as exc:
    raise WorkflowError(f"Invalid config: {exc}") from None
config.clear()
config.update(RESOLVED)

VARIANTS = settings.variants(config)
JOBS = settings.jobs(VARIANTS)  # (variant, data seed): one training job each
SERIES = settings.data_seeds(config)
AXES = [  # the baseline's ablation axes; the named variants and their own axes have figures of their own
    a
    for a in dict.fromkeys(
        v["axis"] for v in VARIANTS.values() if v["base"] == "baseline"
    )
    if a != "baseline"
]
SEGMENTS = {k: config["data"][k] for k in ("train", "validation")} | {
    "horizon": config["horizon"]
}
# continuations from start points in the test segment, and long free runs from the first of them
# scored against the attractor (none without a test segment)
GENERATION, LONGTERM = settings.test_blocks(config)


wildcard_constraints:
    variant="|".join(re.escape(v) for v in VARIANTS),
    axis="|".join(re.escape(a) for a in AXES) or "none",
    data_seed="|".join(str(s) for s in SERIES),


def code(*modules, script=None):
    """What a rule's code computes: a digest of the rnn modules its script imports (transitively) and of the
    script itself, without comments, docstrings or layout (rnn.provenance.code_digest). A param, so an edit
    that changes what they compute reruns the rule, and rewording a comment or a docstring reruns nothing.
    """
    paths = provenance.module_sources(modules)
    if script:
        paths.append(REPO / "scripts" / f"{script}.py")
    return provenance.code_digest(paths)


def run_files(name, variants=None):
    """results/runs/<variant>/data-<seed>/<name> of every training job (of ``variants`` only, if given)."""
    return [
        f"results/runs/{v}/data-{s}/{name}"
        for v, s in JOBS
        if variants is None or v in variants
    ]


def variant_run_files(name):
    """An input function: <name> of every series of the wildcard's variant."""
    return lambda w: run_files(name, [w.variant])


def primary(pattern):
    """An input function: ``pattern`` on the wildcard variant's first series."""
    return lambda w: pattern.format(
        variant=w.variant, data_seed=VARIANTS[w.variant]["data_seeds"][0]
    )


def attractor_files(wildcards):
    """The reference trajectory and its record, where long free runs are scored."""
    return list(rules.attractor.output) if LONGTERM else []


def load_anchors(paths):
    """{name: validated protocol file} of the config's `anchors` list; a bad file stops the run here."""
    found, where = {}, {}
    for path in paths:
        name = Path(path).stem
        if name in found:
            raise WorkflowError(
                f"Invalid config: anchors: {where[name]} and {path} would both write results/anchors/{name}.json"
            )
        try:
            found[name], where[name] = anchor_protocols.load(path), path
        except anchor_protocols.ProtocolError as exc:
            raise WorkflowError(f"Invalid config: anchors: {exc}") from None
    return found


ANCHORS = load_anchors(config["anchors"])


def anchor_outputs():
    """The anchors' records, one per protocol file: part of the default target."""
    return expand("results/anchors/{anchor}.json", anchor=ANCHORS)


def study_outputs():
    """What `snakemake` delivers; the series and every variant's trained runs are deliverables too,
    so that a plain rerun restores any of them that was deleted (e.g. a corrupted file).
    """
    return [
        *expand(rules.data.output.series, data_seed=SERIES),
        rules.lyapunov.output[0],
        *attractor_files(None),
        *[
            path
            for name in ("metrics.csv", "curves.csv", "params.npz", "predictions.npz")
            for path in run_files(name)
        ],
        "results/tables/runs.csv",
        "results/tables/ablation.csv",
        "results/tables/ablation.md",
        "results/summary.md",
        *expand(
            "results/figures/{kind}/{variant}.png",
            kind=["continuations", "curves"],
            variant=VARIANTS,
        ),
        *expand("results/figures/ablation/{axis}.png", axis=AXES),
        *rules.figures.output,
    ]
