"""Shared fixtures for the unit tests of ``rnn``: generic and additive (other test files may add their own)."""

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
