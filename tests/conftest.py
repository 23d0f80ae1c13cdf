"""Shared fixtures: the unit tests' compiled models, and the workflow tests' tiny study (run once a session).

``tests/`` is on ``sys.path`` (pyproject's ``pythonpath``): ``helpers`` (copies of the repository and the
Snakemake CLI), ``bad_configs`` and ``numpy_model`` are imported by name from ``tests/unit`` and
``tests/workflow``.
"""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def compiled_model():
    """``get(spec, K, train, length=None, horizon=1, backend="jax", gradient="bptt") -> rnn.compiled.Compiled``.

    One ``Compiled`` per distinct argument set for the whole session, so each PyTensor function is
    compiled at most once however many tests use it (compiling dominates the run time).
    """
    from rnn.compiled import Compiled

    cache = {}

    def get(spec, K, train, length=None, horizon=1, backend="jax", gradient="bptt"):
        key = (spec, int(K), int(train), int(length or train), int(horizon), backend, gradient)
        if key not in cache:
            cache[key] = Compiled(spec, K, train, length or train, horizon, backend=backend, gradient=gradient)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """The tiny study (``helpers.TINY``), run once a session: the root of a finished copy of the repository.
    Tests only read it; a test that changes anything works on ``study_copy``. Under pytest-xdist the workers
    share one: the first to need it runs it (holding a lock in their common temporary folder), the others
    wait for it."""
    import fcntl

    from helpers import finished_study

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # xdist: one folder per worker
    with open(shared / "tiny-study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "tiny-study.done"
        if not done.exists():
            (shared / "tiny-study").mkdir(exist_ok=True)
            done.write_text(str(finished_study(shared / "tiny-study")))
        return Path(done.read_text())


@pytest.fixture
def study_copy(study, tmp_path):
    """A private copy of the finished tiny study (mtimes and Snakemake's metadata kept)."""
    from helpers import copy_study

    return copy_study(study, tmp_path / "study")
