"""Fault tolerance: the study keeps its promises under bad luck.

Real Snakemake runs in temporary copies of the repository, real PyTensor backends, no mocks:
a variant that diverges, a run killed mid-training and resumed, two clean runs that must agree to
the bit, the three backends on one study, two studies compiling into one empty C cache at once,
and intermediate files corrupted after the study finished.
"""

import copy
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from helpers import (TINY, copy_repo, copy_study, finished_study, is_png, jobs, ok, planned, read_runs, run_dir, snakemake,
                     snakemake_env)

# A study where training diverges, one knob at a time, on a relu baseline that trains:
# lr 40 blows up every SGD seed in a few epochs (BFGS has no learning rate and trains), and a large
# recurrent init blows up SGD seed 0 but not seed 1 (jax on this machine; asserted below).
UNLUCKY = copy.deepcopy(TINY)
UNLUCKY.update(optimizers=["sgd", "bfgs"])
UNLUCKY["baseline"]["nonlinearity"] = "relu"
UNLUCKY["ablations"] = {"lr": [40.0], "init_scale_rec": [0.8]}
UNLUCKY_VARIANTS = ["baseline", "lr-40.0", "init_scale_rec-0.8"]
UNLUCKY_AXES = ["lr", "init_scale_rec"]

# The smallest study that trains both kinds of optimizer: one variant, two seeds, a short series.
SMALL = copy.deepcopy(TINY)
SMALL.update(seeds=[0, 1], optimizers=["sgd", "bfgs"], horizon=100, ablations={})
SMALL["data"].update(length=300, train=150, validation=50)

STUDY_FIGURES = ["prediction", "learning_curves", "attractor", "continuation_best", "valid_time",
                 "generation_continuations", "generation_attractors", "generation_longterm", "around"]
SERIES = "results/data/series-0.npz"


# --- helpers ------------------------------------------------------------------------------------

def timing_free(frame):
    """A table without its timing columns (every column whose name holds "seconds")."""
    return frame[[c for c in frame.columns if "seconds" not in c]]


def tables(root):
    """(runs.csv, ablation.csv) of a finished study, without timing columns."""
    ablation = pd.read_csv(root / "results/tables/ablation.csv", dtype={"value": str}).fillna({"value": ""})
    return timing_free(read_runs(root)), timing_free(ablation)


def assert_same_tables(a, b):
    """runs.csv and ablation.csv of two studies agree exactly, timing columns aside."""
    for name, x, y in zip(("runs.csv", "ablation.csv"), tables(a), tables(b)):
        assert list(x.columns) == list(y.columns), name
        numeric = x.select_dtypes("number").columns
        fx, fy = x[numeric].to_numpy(float), y[numeric].to_numpy(float)
        both = np.isfinite(fx) & np.isfinite(fy)
        ulps = np.abs(fx.view(np.int64) - fy.view(np.int64))[both]
        assert np.array_equal(np.isnan(fx), np.isnan(fy)), f"{name}: NaN in different cells"
        assert ulps.max(initial=0) == 0, f"{name}: numbers differ by up to {ulps.max()} ulp"
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


def outputs(root, variants, axes):
    """Every file the study's target ``all`` promises."""
    names = ["results/tables/runs.csv", "results/tables/ablation.csv", "results/tables/ablation.md",
             "results/summary.md", "results/summary.html"]
    names += [f"results/figures/{kind}/{v}.png" for kind in ("continuations", "curves") for v in variants]
    names += [f"results/figures/ablation/{a}.png" for a in axes]
    names += [f"results/figures/{f}.png" for f in STUDY_FIGURES]
    return [root / n for n in names]


def check_file(path):
    """Raise if ``path`` is not a complete file of its kind (what a reader of the study needs)."""
    from rnn import experiment, io

    name = path.name
    if name.startswith("series-") and name.endswith(".npz"):
        io.load_series(path)
    elif name == "attractor.npz":
        io.load_npz(path, ["series"])
    elif name == "predictions.npz":
        io.load_predictions(path)
    elif name.endswith(".npz"):
        io.load_npz(path, ["seeds"])
    elif name.endswith(".csv"):
        assert len(io.load_csv(path)) > 0, path
    elif name.endswith(".png"):
        assert is_png(path), path
    elif name.endswith(".md"):
        assert path.read_text().endswith("\n") and len(path.read_text()) > 50, path
    elif name.endswith(".html"):  # the static summary as a page
        assert path.read_text().rstrip().endswith("</html>") and "<img " in path.read_text(), path
    elif name == "lyapunov.json":
        assert io.load_lyapunov(path) > 0, path
    elif name == "attractor.json":
        assert io.load_json(path)["floors"], path
    else:
        raise AssertionError(f"unexpected file {path}")


def is_temporary(path):
    """A temporary file of rnn.io.atomic: a hidden sibling, never a finished name."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def check_results(root, variants=(), axes=(), complete=True):
    """Every finished name under results/ holds a complete file; with ``complete``, all of them exist."""
    files = [p for p in (root / "results").rglob("*") if p.is_file()]
    for path in files:
        if not is_temporary(path):
            check_file(path)
    if complete:
        missing = [str(p.relative_to(root)) for p in outputs(root, variants, axes) if not p.is_file()]
        assert missing == [], missing
        for variant in variants:
            for name in ("metrics.csv", "curves.csv", "params.npz", "predictions.npz"):
                assert (root / run_dir(variant) / name).is_file(), (variant, name)
    return files


def snapshot(folder):
    """{relative path: (bytes, mtime)} of every file under ``folder``."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def truncate(path, keep=0.5):
    """Keep the first ``keep`` of the file's bytes, never ending at a line break (a CSV cut mid-row: where
    the cut fell right after one, as the timings' digits can make it, the file would read as complete)."""
    data = path.read_bytes()
    cut = int(len(data) * keep)
    while cut > 1 and data[cut - 1:cut] == b"\n":
        cut -= 1
    path.write_bytes(data[:cut])


def bad_file_reported(output, path, problem):
    """The run's output names the file with rnn.io.BadFileError's message, not only a NumPy traceback."""
    pattern = rf"BadFileError: {re.escape(path)}: {problem}.*Delete it and rerun"
    assert re.search(pattern, output), f"{pattern!r} not in the output:\n{output[-5000:]}"
    assert "site-packages/numpy" not in output, "a NumPy traceback leaks into the error"


def processes_in(root):
    """Ids of the processes whose working directory is under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(root):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# --- the unlucky study --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def unlucky(tmp_path_factory):
    """The unlucky study, run once: the root of a finished copy of the repository."""
    return finished_study(tmp_path_factory.mktemp("unlucky"), UNLUCKY)


@pytest.fixture
def unlucky_copy(unlucky, tmp_path):
    return copy_study(unlucky, tmp_path / "unlucky")


def test_diverged_runs_are_recorded_counted_and_the_study_completes(unlucky):
    check_results(unlucky, UNLUCKY_VARIANTS, UNLUCKY_AXES)
    runs = read_runs(unlucky)
    assert len(runs) == len(UNLUCKY_VARIANTS) * 2 * 2
    status = {(r.variant, r.optimizer, r.seed): r.status for r in runs.itertuples()}
    diverged = {k for k, s in status.items() if s == "diverged"}
    assert diverged == {("lr-40.0", "sgd", 0), ("lr-40.0", "sgd", 1), ("init_scale_rec-0.8", "sgd", 0)}
    assert {s for k, s in status.items() if k not in diverged} <= {"ok", "unstable"}

    metrics = ["train_mse", "val_mse", "nrmse_1", "nrmse_84", "vpt_steps", "vpt_lyapunov", "spectral_error"]
    bad = runs["status"] == "diverged"
    assert runs.loc[bad, metrics].isna().all().all(), "a diverged run has metrics"
    assert np.isfinite(runs.loc[~bad, ["train_mse", "val_mse"]].to_numpy(float)).all()
    for name in ("lr-40.0", "init_scale_rec-0.8"):
        log = (unlucky / f"logs/train/{name}/data-0.log").read_text()
        assert re.search(r"seed \d+ diverged at epoch \d+", log), name

    # ablation.csv: diverged runs are counted and left out of the means
    table = pd.read_csv(unlucky / "results/tables/ablation.csv", dtype={"data_seed": str})
    table = table[table["data_seed"] == "all"].set_index(["variant", "optimizer"])
    assert table.loc[("lr-40.0", "sgd"), ["n", "n_diverged", "val_mse_n"]].tolist() == [2, 2, 0]
    assert np.isnan(table.loc[("lr-40.0", "sgd"), "val_mse_mean"])
    assert table.loc[("lr-40.0", "bfgs"), ["n", "n_diverged", "val_mse_n"]].tolist() == [2, 0, 2]
    assert table.loc[("init_scale_rec-0.8", "sgd"), ["n", "n_diverged", "val_mse_n"]].tolist() == [2, 1, 1]
    survivor = runs[(runs["variant"] == "init_scale_rec-0.8") & (runs["optimizer"] == "sgd") & ~bad]
    assert table.loc[("init_scale_rec-0.8", "sgd"), "val_mse_mean"] == survivor["val_mse"].item()
    assert table["n_diverged"].sum() == 3

    # ablation.md and summary.md show the count
    markdown = (unlucky / "results/tables/ablation.md").read_text()
    assert "| diverged |" in markdown.splitlines()[2]
    assert re.search(r"^\| lr-40\.0 \| sgd \| 0 \| 2 \| – \|", markdown, re.M), markdown
    assert re.search(r"^\| init_scale_rec-0\.8 \| sgd \| 1 \| 1 \| ", markdown, re.M), markdown
    summary = (unlucky / "results/summary.md").read_text()
    assert re.search(r"Runs: 12 \(3 diverged, 9 ok\)\.", summary), summary[:1000]
    assert markdown in summary


def red_pixels(path):
    """Pixels of the pure red in which rnn.plots.continuation writes its "k of n seeds diverged" note."""
    image = matplotlib.image.imread(path)
    return int(((image[..., 0] > 0.9) & (image[..., 1] < 0.25) & (image[..., 2] < 0.25)).sum())


def test_continuation_figures_mark_diverged_seeds(unlucky):
    import matplotlib.pyplot as plt

    from rnn import experiment, io, plots

    figures = unlucky / "results/figures/continuations"
    # the workflow's figures: a red note where seeds diverged, none where none did
    assert red_pixels(figures / "baseline.png") == 0
    assert red_pixels(figures / "lr-40.0.png") > 100
    assert red_pixels(figures / "init_scale_rec-0.8.png") > 100

    # what the note says, from the study's own files, as scripts/plot_variant.py reads them
    runs = io.load_csv(unlucky / run_dir("init_scale_rec-0.8") / "metrics.csv")
    pred = io.load_predictions(unlucky / run_dir("init_scale_rec-0.8") / "predictions.npz")
    diverged = {opt: [bool(((runs["optimizer"] == opt) & (runs["seed"] == s) & (runs["status"] == "diverged")).any())
                      for s in pred["seeds"]] for opt in pred["continuation"]}
    assert diverged == {"sgd": [True, False], "bfgs": [False, False]}
    fig = plots.continuation(io.load_series(unlucky / SERIES), pred["continuation"],
                             UNLUCKY["data"]["train"], diverged=diverged)
    notes = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    plt.close(fig)
    assert notes == [["gradient descent: 1 of 2 seeds diverged in training (not drawn)"], []]


# --- determinism --------------------------------------------------------------------------------

def test_two_clean_runs_give_identical_tables(unlucky, tmp_path):
    """Same config, same backend (jax), same machine, separate copies: the same numbers to the bit."""
    again = copy_repo(tmp_path / "again", UNLUCKY)
    ok(again, "--cores", "2", timeout=600)
    assert_same_tables(unlucky, again)


# --- bad files ----------------------------------------------------------------------------------

def test_a_corrupted_series_is_named_and_regenerated(unlucky, unlucky_copy):
    root = unlucky_copy
    truncate(root / SERIES)
    rc, out = snakemake(root, "--cores", "2")
    assert rc != 0, "a run on a truncated series succeeded"
    bad_file_reported(out, SERIES, r"not a readable \.npz archive")
    for variant in UNLUCKY_VARIANTS:  # the log Snakemake points to names the file as well
        assert f"{SERIES}: not a readable .npz archive" in (root / f"logs/train/{variant}/data-0.log").read_text()

    (root / SERIES).unlink()
    out = ok(root, "--cores", "2", timeout=600)
    assert {j["rule"] for j in jobs(out)} >= {"data", "train", "aggregate"}
    check_results(root, UNLUCKY_VARIANTS, UNLUCKY_AXES)
    assert_same_tables(root, unlucky)
    assert planned(root) == {}


def test_corrupted_variant_files_are_named_and_only_that_variant_reruns(unlucky, unlucky_copy):
    root = unlucky_copy
    predictions = str(run_dir("lr-40.0") / "predictions.npz")
    metrics = str(run_dir("init_scale_rec-0.8") / "metrics.csv")
    truncate(root / predictions)
    truncate(root / metrics)  # cut in the middle of a row: pandas alone would read NaNs
    assert not (root / metrics).read_bytes().endswith(b"\n")
    kept = snapshot(root / run_dir("baseline"))
    kept_figures = {p: snapshot(root / "results/figures" / p) for p in ("continuations", "curves")}

    rc, out = snakemake(root, "--cores", "2")
    assert rc != 0, "a run on truncated files succeeded"
    bad_file_reported(out, predictions, r"not a readable \.npz archive")
    bad_file_reported(out, metrics, "truncated")
    assert predictions in (root / "logs/plot_variant/lr-40.0.log").read_text()
    assert metrics in (root / "logs/aggregate.log").read_text()
    assert snapshot(root / run_dir("baseline")) == kept  # nothing already computed is lost

    (root / predictions).unlink()
    (root / metrics).unlink()
    out = ok(root, "--cores", "2", timeout=600)
    retrained = sorted(j["wildcards"]["variant"] for j in jobs(out) if j["rule"] == "train")
    assert retrained == ["init_scale_rec-0.8", "lr-40.0"]
    assert "data" not in {j["rule"] for j in jobs(out)}
    assert snapshot(root / run_dir("baseline")) == kept
    for folder, before in kept_figures.items():
        after = snapshot(root / "results/figures" / folder)
        assert after[Path("baseline.png")] == before[Path("baseline.png")], folder
    check_results(root, UNLUCKY_VARIANTS, UNLUCKY_AXES)
    assert_same_tables(root, unlucky)
    assert planned(root) == {}


# --- kill and resume ----------------------------------------------------------------------------

def test_a_killed_run_leaves_no_half_written_file_and_resumes(tmp_path):
    """SIGKILL the whole run while the baseline trains and epochs-20's figures are half done; rerun."""
    config = copy.deepcopy(TINY)
    config.update(optimizers=["sgd"], curve_every=1000)
    config["baseline"]["epochs"] = 60000  # about 15 s here; epochs-20 trains in no time
    config["ablations"] = {"epochs": [20]}
    variants, axes = ["baseline", "epochs-20"], ["epochs"]
    root = copy_repo(tmp_path / "repo", config)
    log_file = root / "logs/train/baseline/data-0.log"
    short = root / run_dir("epochs-20")
    # plot_variant writes the continuation figure, then draws and writes the learning curves: kill in between
    first = root / "results/figures/continuations/epochs-20.png"
    second = root / "results/figures/curves/epochs-20.png"
    with open(tmp_path / "first.out", "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "4"], cwd=root, env=snakemake_env(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (first.is_file() and log_file.is_file() and re.search(r"epoch \d+ cost", log_file.read_text())):
            assert proc.poll() is None, "the study finished before it could be killed"
            assert time.monotonic() < deadline, "training never started"
            assert not second.is_file(), "missed the moment between the two figures"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)
    left = processes_in(root)
    for pid in left:  # a job that escaped the process group
        os.kill(pid, signal.SIGKILL)
    assert left == [], "jobs outlived the killed Snakemake"

    # killed mid-training and mid-job: nothing sits half-written under a finished name
    assert not (root / run_dir("baseline") / "metrics.csv").exists(), "baseline finished: raise its epochs"
    assert not second.exists()
    orphans = {p for p in check_results(root, complete=False) if is_temporary(p)}
    assert is_png(first)
    done = snapshot(short)
    assert set(done) == {Path(n) for n in ("metrics.csv", "curves.csv", "params.npz", "predictions.npz")}

    # SIGKILL leaves Snakemake's directory locks behind; the workflow recorded their owner's process
    # id, sees it gone, and clears them. The same plain command resumes: the default profile reruns
    # the incomplete plot_variant (its first figure is complete, but the job is not) and the killed
    # training; what finished is kept
    assert any((root / ".snakemake/locks").glob("*.lock")), "the killed run should have left its locks"
    assert "Removed the locks left by an earlier run" in ok(root, "-n")
    assert not any((root / ".snakemake/locks").glob("*.lock"))
    plan = planned(root)
    assert plan.get("train") == ["baseline,0"] and plan.get("plot_variant") == variants
    out = ok(root, "--cores", "4", timeout=600)
    assert [j["wildcards"]["variant"] for j in jobs(out) if j["rule"] == "train"] == ["baseline"]
    assert snapshot(short) == done
    files = check_results(root, variants, axes)
    assert {p for p in files if is_temporary(p)} <= orphans, "the resumed run left temporary files"
    runs = read_runs(root)
    assert sorted(zip(runs["variant"], runs["seed"])) == [(v, s) for v in variants for s in TINY["seeds"]]
    text = log_file.read_text()
    assert max(int(e) for e in re.findall(r"epoch (\d+) cost", text)) == 59999
    assert planned(root) == {}


def test_locks_taken_on_another_host_are_left_alone(tmp_path):
    """A cluster's shared filesystem: the process that took the locks may be alive on another host."""
    root = copy_repo(tmp_path / "repo")
    locks = root / ".snakemake/locks"
    locks.mkdir(parents=True)
    lock = locks / "0.output.lock"
    lock.write_text("results/tables/runs.csv\n")
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its process id is dead here: only the host keeps the locks
    owner = root / ".snakemake/lock-owner.json"
    owner.write_text(json.dumps({"host": "node17.cluster.example", "pid": finished.pid}))
    time.sleep(0.05)
    os.utime(owner)  # recorded after the locks were taken, as onstart does

    rc, out = snakemake(root, "--cores", "1")
    assert rc != 0, "a run started in a directory locked by another host"
    assert "Directory cannot be locked" in out, out[-3000:]  # Snakemake's LockException
    message = " ".join(out.split())
    assert "taken by process" in message and "on host node17.cluster.example" in message, out[-3000:]
    assert "`snakemake --unlock`" in message
    assert "Removed the locks" not in out
    assert lock.read_text() == "results/tables/runs.csv\n"
    assert jobs(out) == [] and not (root / "results").exists()


# --- backends -----------------------------------------------------------------------------------

def test_backends_agree(tmp_path):
    """One small study per backend: the same train MSE within 1e-6 relative."""
    found = {}
    for backend in ("jax", "c", "numba"):
        root = copy_repo(tmp_path / backend, {**SMALL, "backend": backend})
        ok(root, "--cores", "2", timeout=600)
        runs = read_runs(root).sort_values(["optimizer", "seed"]).reset_index(drop=True)
        assert set(runs["backend"]) == {backend}
        found[backend] = runs
    reference = found["jax"]
    for backend in ("c", "numba"):
        keys = ["optimizer", "seed", "status"]
        assert found[backend][keys].equals(reference[keys]), backend
    worst = {}
    for metric in ("train_mse", "val_mse"):
        for a, b in itertools.combinations(found, 2):
            x, y = found[a][metric].to_numpy(float), found[b][metric].to_numpy(float)
            worst[metric, a, b] = float(np.max(np.abs(x - y) / np.minimum(np.abs(x), np.abs(y))))
    for (metric, a, b), rel in worst.items():
        print(f"largest relative difference of {metric}, {a} against {b}: {rel:.3g}")
    largest = max(rel for (metric, *_), rel in worst.items() if metric == "train_mse")
    print(f"largest relative difference of train_mse between backends: {largest:.3g}")
    assert largest <= 1e-6, worst


# --- concurrency --------------------------------------------------------------------------------

def test_two_studies_compile_into_one_empty_cache_at_once(tmp_path):
    """Backend c, an empty PyTensor compile cache shared by two working copies that run at once."""
    from rnn import backends

    cache = tmp_path / "pytensor"
    cache.mkdir()
    flags = f"base_compiledir={cache}"
    environ = {"PYTENSOR_FLAGS": flags}
    backends.configure_environment(environ)  # the user's key is kept, the package's are added
    assert environ["PYTENSOR_FLAGS"].startswith(flags + ",") and "compile__timeout=" in environ["PYTENSOR_FLAGS"]

    config = {**SMALL, "backend": "c", "ablations": {"lr": [0.1]}}  # two variants: jobs compile side by side
    roots = [copy_repo(tmp_path / name, config) for name in ("a", "b")]
    env = snakemake_env(PYTENSOR_FLAGS=flags)
    procs = []
    for root in roots:
        with open(root / "snakemake.out", "w") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "4"], cwd=root, env=env,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    for root, code in zip(roots, codes):
        out = (root / "snakemake.out").read_text()
        assert code == 0, f"{root.name} failed:\n{out[-6000:]}"
        assert not re.search(r"could not be acquired|Timeout|Traceback|corrupt", out, re.I), out[-6000:]
        for variant in ("baseline", "lr-0.1"):
            log = (root / f"logs/train/{variant}/data-0.log").read_text()
            assert f"'compiledir': '{cache}/compiledir_" in log, "the job did not use the shared cache"
            assert " on c in " in log
        check_results(root, ["baseline", "lr-0.1"], ["lr"])
    assert_same_tables(*roots)
    assert list(cache.rglob("*.so")), "nothing was compiled into the shared cache"
    from filelock import FileLock

    for lock in cache.rglob(".lock"):  # released: the next study does not wait for a dead one
        FileLock(lock).acquire(timeout=0).lock.release()
