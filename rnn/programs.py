"""A persistent cache of the JAX programs that ``rnn.compiled`` builds, keyed by what builds them.

Turning one of the study's graphs into a JAX program costs more than running XLA on it: PyTensor
builds the graph, rewrites it (closed-loop-60's eight horizon graphs: 4.4 s of rewrites) and writes
it as JAX code, which JAX traces and lowers to StableHLO. JAX's own persistent cache
(``rnn.backends``) starts after all that: it skips only XLA's compile of the lowered program. This
cache keeps the lowered program itself (``jax.export``'s serialized form) under a hash of what built
it: the graph's name and sizes, the ``Spec`` fields a graph is built from (a training graph's: all but the
initial scales and what it takes as inputs, the penalties and noise levels; a graph that runs a trained
network's: its architecture), the code of the modules that
build graphs (``rnn.compiled`` and what it imports; without comments and docstrings), PyTensor's and JAX's versions, PyTensor's flags
and the platform. A hit deserializes the program and skips PyTensor; XLA compiles it, or loads it
from JAX's cache. It is the same program, so the numbers are bitwise the ones PyTensor's function
gives (tests/test_programs.py). Only the JAX backend has it.

``RNN_PROGRAM_CACHE_DIR`` names the folder (by default ``$XDG_CACHE_HOME/rnn-study/programs``, i.e.
``~/.cache/rnn-study/programs``; an empty string turns the cache off). An edit that changes what any of
those modules computes changes every key (rewording a comment or docstring changes none), so nothing stale is ever loaded; old entries are left behind (delete the
folder to reclaim the space). A file that cannot be read back is ignored and rebuilt.
"""

import fcntl
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from . import backends, io, model

FORMAT = 1  # bump when what an entry holds changes
ENV = "RNN_PROGRAM_CACHE_DIR"

log = logging.getLogger(__name__)


def directory(environ=os.environ):
    """The cache's folder, or None when the cache is off."""
    backends.configure_environment(environ)
    return Path(environ[ENV]) if environ.get(ENV) else None


@lru_cache(maxsize=None)
def source_digest():
    """sha256 over what every module the graphs are built with computes: ``rnn.compiled`` and every ``rnn``
    module it imports, transitively (``rnn.provenance.module_sources``), without comments and docstrings
    (``rnn.provenance.code_digest``): rewording them keeps the cache."""
    from .provenance import code_digest, module_sources

    return code_digest(module_sources(["compiled"]))


def graph_fields(spec):
    """The ``Spec`` as the training graphs see it: every field but those that only draw the initial weights."""
    return {k: v for k, v in spec.to_dict().items() if k not in model.INIT_FIELDS}


RUNTIME = ("l1", "l2", "weight_noise", "input_noise")  # the training graphs' inputs, not their constants


def training_fields(spec):
    """The ``Spec`` as the training graphs (the loss, SGD) see it: ``graph_fields`` without the penalties'
    coefficients and the noise levels, which they take as inputs (``rnn.model.symbolic_penalty``, the noise
    drawn outside), so that every L1, L2 and noise value shares one program."""
    return {k: v for k, v in graph_fields(spec).items() if k not in RUNTIME}


ARCHITECTURE = ("hidden", "nonlinearity", "skip")  # all that a graph running a trained network reads


def architecture_fields(spec):
    """The ``Spec`` as the graphs that run a trained network see it (teacher-forced predictions, free runs,
    states): the parameters' shapes and the nonlinearity. The training loss's settings (penalties, noise,
    horizons, forcing) do not enter them, so every variant of one architecture shares their programs."""
    return {k: getattr(spec, k) for k in ARCHITECTURE}


def key(what):
    """The hex key of the program that ``what`` (plain data: graph name, sizes, spec fields) builds
    with this package, these versions and flags, on this platform."""
    jax = backends.import_jax()
    import jaxlib
    import pytensor

    material = {"format": FORMAT, "what": what, "source": source_digest(),
                "versions": [pytensor.__version__, jax.__version__, jaxlib.__version__],
                "pytensor_flags": os.environ.get("PYTENSOR_FLAGS", ""), "platform": jax.default_backend(),
                "x64": bool(jax.config.jax_enable_x64)}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=repr).encode()).hexdigest()


def load(folder, name):
    """The cached program ``name`` as a function of the graph's inputs returning its outputs (a list),
    or None if there is none (or it cannot be read back)."""
    path = Path(folder) / f"{name}.jax"
    backends.import_jax()
    from jax import export

    try:
        program = export.deserialize(bytearray(path.read_bytes()))
    except FileNotFoundError:
        return None
    except Exception as error:  # noqa: BLE001 - a torn, foreign or unreadable file: build the program
        log.warning("ignoring unreadable cached program %s (%s)", path, error)
        return None
    return _callable(program)


def _callable(program):
    call = backends.import_jax().jit(program.call)
    return lambda *args: list(call(*args))


def save(folder, name, function):
    """Store the JAX program of the PyTensor ``function`` (compiled with mode JAX) under ``name``, written
    atomically, and return it as ``load`` would (so that a first run and a rerun compile the same program
    and share JAX's cache); returns None, storing nothing, where its inputs have no static shapes or
    it cannot be exported or written (the caller keeps PyTensor's function: the cache only saves time)."""
    jax = backends.import_jax()
    from jax import export

    linker = function.maker.linker
    inputs = [v.type for v in function.maker.fgraph.inputs]
    if getattr(linker, "scalar_shape_inputs", ()) or any(None in t.shape for t in inputs):
        return None
    try:
        program = export.export(function.vm.jit_fn)(*(jax.ShapeDtypeStruct(t.shape, t.dtype) for t in inputs))
        with io.atomic(Path(folder) / f"{name}.jax", "wb") as f:
            f.write(program.serialize())
    except Exception as error:  # noqa: BLE001 - e.g. a read-only or full cache folder
        log.warning("not caching program %s in %s (%s)", name, folder, error)
        return None
    return _callable(program)


@contextmanager
def building(folder, name):
    """Hold the build lock of program ``name`` (an advisory ``flock`` on ``name.lock`` in ``folder``), so
    that jobs starting together build each program once: the first builds and stores it, the others wait,
    then load it. Where the folder cannot hold a lock (read-only, a file system without locks) nothing is
    held: the jobs then build it each, as without the cache."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        handle = open(Path(folder) / f"{name}.lock", "a")
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass
        yield  # closing the file releases the lock
