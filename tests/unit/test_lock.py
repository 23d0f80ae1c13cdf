"""requirements.lock pins what produced the published numbers: consistent with pyproject, installed here, used.

The lock is made by ``uv pip compile`` (README, "Quick start"); these checks say when it has gone
stale: a dependency added to pyproject.toml without refreshing it, an environment installed
without it, an environment file that no longer uses it.
"""

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import REPO

LOCK = REPO / "requirements.lock"


def pins():
    """{canonical name: version} of the lock's ``name==version`` lines."""
    found = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
            assert match, f"requirements.lock: not an exact pin: {line!r}"
            found[canonicalize_name(match[1])] = match[2]
    return found


def project_requirements():
    """The project's dependencies and its test extra (what the README's commands install)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_every_dependency_is_pinned_within_its_range():
    locked = pins()
    for req in project_requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements.lock: refresh the lock (README)"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={locked[name]}, outside pyproject's {req}")


def test_this_environment_is_the_locked_one():
    """The versions that run the tests are the lock's (CI installs from it)."""
    locked = pins()
    wrong = {}
    for req in project_requirements():
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != locked[canonicalize_name(req.name)]:
            wrong[req.name] = (installed, locked[canonicalize_name(req.name)])
    assert not wrong, f"installed vs locked: {wrong}; install with `pip install -r requirements.lock -e '.[test]'`"


def test_environment_files_install_the_lock():
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    workflow_env = (REPO / "workflow/envs/rnn.yaml").read_text()
    assert re.search(r"^      - -r \.\./\.\./requirements\.lock$", workflow_env, re.M)
    # Snakemake rebuilds a conda environment only when its file changes: the file names the lock's digest
    assert f"requirements.lock sha256 {digest}" in workflow_env, (
        f"update the digest in workflow/envs/rnn.yaml to {digest}")
    assert re.search(r"^      - -r requirements\.lock$", (REPO / "environment.yml").read_text(), re.M)
    ci = (REPO / ".ci/run").read_text()
    readme = (REPO / "README.md").read_text()
    install = "pip install -q -r requirements.lock -e '.[test]'"
    assert install in ci and install.replace(" -q", "") in readme


@pytest.mark.slow
def test_the_lock_resolves_to_itself(tmp_path):
    """pip, as configured here, would install exactly the lock: every pin found, nothing missing from it."""
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                    "--report", str(report), "-r", str(LOCK)], check=True, timeout=600)
    resolved = {canonicalize_name(p["metadata"]["name"]): p["metadata"]["version"]
                for p in json.loads(report.read_text())["install"]}
    assert resolved == pins()
