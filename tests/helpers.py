"""Helpers of the workflow tests: temporary copies of the repository and the real Snakemake CLI.

Imported as ``from helpers import ...`` (pytest's default rootdir import mode puts ``tests/`` on
``sys.path``; ``tests/`` has no ``__init__.py``).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
COPIED = ("workflow", "scripts", "rnn", "config", "profiles")

TINY = {
    "data": {"generator": "mackey_glass", "length": 400, "tau": 17, "seed": 0, "train": 200, "validation": 100,
             "test": 100},
    "horizon": 150,
    "generation": {"starts": 3, "spacing": 5, "warmup": 20, "horizon": 50},
    "longterm": {"steps": 1000, "discard": 200, "reference": 4000, "nperseg": 256},
    "backend": "jax",
    "seeds": [0, 1],
    "optimizers": ["sgd", "bfgs", "sgd+bfgs"],
    "curve_every": 10,
    "baseline": {"hidden": 6, "nonlinearity": "tanh", "lr": 0.3, "epochs": 30, "bfgs_maxiter": 20},
    "ablations": {"hidden": [3], "nonlinearity": ["relu"], "skip": [True], "lr": [0.1]},
    "anchors": [],  # the anchors' own workflow test runs a tiny protocol (tests/workflow/test_anchors_workflow.py)
}


def copy_repo(dest, config=TINY):
    """A copy of the repository's workflow, scripts, package, config and profiles, with ``config``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    write_config(dest, config)
    return dest


def write_config(root, config):
    # --configfile would deep-merge into config/config.yaml, so the tiny config replaces it instead.
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake_env(**extra):
    """The environment the Snakemake CLI runs in: this one, Agg figures, plus ``extra`` variables."""
    return {**os.environ, "MPLBACKEND": "Agg", **extra}


def snakemake(root, *args, timeout=300, env=None):
    """Run the Snakemake CLI in ``root``; returns (exit status, stdout and stderr together).

    ``env``: extra environment variables (e.g. ``PYTENSOR_FLAGS``) on top of ``snakemake_env()``.
    """
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=root, env=snakemake_env(**(env or {})),
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode, proc.stdout


def ok(root, *args, timeout=300, env=None):
    rc, out = snakemake(root, *args, timeout=timeout, env=env)
    assert rc == 0, f"snakemake {' '.join(args)} failed ({rc}):\n{out[-6000:]}"
    return out


JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", re.M)


def run_dir(variant, data_seed=0):
    """Where a training job writes: results/runs/<variant>/data-<seed>."""
    return Path("results/runs") / variant / f"data-{data_seed}"


def jobs(output):
    """The jobs a (dry) run lists: [{"rule", "wildcards": {...}, "resources": {...}}]."""
    def pairs(text):
        return dict(kv.split("=", 1) for kv in text.split(", ")) if text else {}

    found = []
    for rule, body in JOB.findall(output):
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, re.M))
        found.append({"rule": rule, "wildcards": pairs(fields.get("wildcards")),
                      "resources": pairs(fields.get("resources"))})
    return found


def planned(root, *args):
    """{rule: sorted wildcard values} of what ``snakemake -n`` would run in ``root``."""
    out = ok(root, "-n", *args)
    plan = {}
    for job in jobs(out):
        plan.setdefault(job["rule"], []).append(",".join(job["wildcards"].values()))
    return {rule: sorted(values) for rule, values in plan.items()}


def read_runs(root):
    return pd.read_csv(root / "results/tables/runs.csv", dtype={"value": str}).fillna({"value": ""})


def is_png(path):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", f"{path} is truncated"
    image = matplotlib.image.imread(path)
    return image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def finished_study(parent, config=TINY):
    """Run ``config`` to completion in a new copy of the repository under ``parent``; returns its root."""
    root = copy_repo(parent, config)
    ok(root, "--cores", "2", timeout=900)
    return root


def copy_study(root, dest):
    """A private copy of a finished study (mtimes and .snakemake metadata kept)."""
    return Path(shutil.copytree(root, dest, symlinks=True))
