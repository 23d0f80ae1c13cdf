"""Backend selection: ``"c"``, ``"jax"`` and ``"numba"`` map to PyTensor's CVM, JAX and Numba modes.

Everything that must be set before PyTensor or JAX is first imported lives here: the BLAS that the
C backend links (pip's PyTensor finds none by itself), the compile-lock timeout, one thread per
job for XLA (Snakemake runs several jobs side by side and sets OMP/OPENBLAS threads the same way),
and XLA's small-loop threshold.

XLA's CPU runtime runs a while loop (a ``scan``) step by step through its runtime unless one
iteration touches fewer than ``xla_cpu_small_while_loop_byte_threshold`` bytes (1024 by default:
less than one 15 x 15 float64 matrix), in which case the loop is compiled into one piece of code.
``XLA_LOOP_BYTES`` raises it so that the training loops of the study's networks (hidden 15: the
tutorial's step touches about 2 KB; hidden 60 with 5 stacked models about 150 KB) compile whole;
much larger loops (a reservoir of hundreds of units with many start points) run faster step by
step and stay above it.

JAX's persistent compilation cache (``JAX_COMPILATION_CACHE_DIR``, by default
``$XDG_CACHE_HOME/rnn-study/jax``, i.e. ``~/.cache/rnn-study/jax``) keeps every compiled XLA program
on disk, keyed by its computation: a rerun, another variant with the same graph (the initial-scale
ablations share the baseline's) or a test that compiles what another compiled loads it instead of
compiling again. Set ``JAX_COMPILATION_CACHE_DIR`` to another folder, or to an empty string to turn
it off. ``rnn.programs`` keeps what comes before XLA (the lowered programs, ``RNN_PROGRAM_CACHE_DIR``,
by default ``~/.cache/rnn-study/programs``).

XLA runs a CPU program's operations on a pool of threads as large as the CPUs the process may use
(``PJRT_NPROC`` overrides it), and how it splits some of them depends on that size: the same
closed-loop loss and gradient came out with other last bits with a pool of 1 or 4 threads than
with 2, 3 or 16 (this project's 2-core machine), and a job limited to one CPU (``taskset``, a
cluster's allocation) gets a pool of 1. ``XLA_POOL_THREADS`` fixes the size, so that neither the
core count nor the CPUs a job is given change the numbers. It is 1: the study's programs are
small loops whose second thread mostly waits for work, and a pool of 1 spends a quarter less CPU
on a closed-loop call (88 against 117 ms at closed-loop-60's horizon 128) in the same wall time,
which is CPU the other jobs on the machine get.

glibc's malloc hands a large freed buffer straight back to the kernel (above its mmap threshold, and
by trimming its per-thread arenas), so every call of a compiled closed-loop loss faulted its tens of
megabytes of temporaries back in page by page: at closed-loop-60's horizon 128, 18 000 page faults
and a third of the call's time in the kernel. ``MALLOC_TUNABLES`` keeps freed memory in one arena
for the next call (same numbers: only where the buffers live changes). glibc reads them when a
process starts, so ``malloc_environment`` sets them for the processes started after it (the
workflow sets them for every job); other C libraries ignore them. The benchmark runs without them:
with them, where the heap puts the buffers varies from run to run and so did the speed of the
closed-loop call at 30 units (62 to 114 ms over five runs, 76 to 79 without), too noisy for its
ratios.
"""

import ctypes.util
import os

BACKENDS = {"c": "CVM", "jax": "JAX", "numba": "NUMBA"}
COMPILE_LOCK_TIMEOUT_S = 1200  # PyTensor's default of 120 s is too short when 4 jobs compile at once
XLA_LOOP_BYTES = 1 << 20  # xla_cpu_small_while_loop_byte_threshold (see above)
XLA_POOL_THREADS = 1  # PJRT_NPROC: the size of XLA's CPU thread pool (see above)
MALLOC_TUNABLES = {"glibc.malloc.arena_max": "1", "glibc.malloc.mmap_max": "0",  # see above
                   "glibc.malloc.trim_threshold": str(1 << 34)}


def _add_flag(flags, key, value):
    return flags if f"{key}=" in flags else ",".join(f for f in (flags, f"{key}={value}") if f)


def configure_environment(environ=os.environ):
    """Set PYTENSOR_FLAGS / XLA_FLAGS / XLA's pool size defaults that a user has not set already (before
    JAX's first computation, which reads them)."""
    flags = environ.get("PYTENSOR_FLAGS", "")
    if ctypes.util.find_library("openblas"):
        flags = _add_flag(flags, "blas__ldflags", "-lopenblas")
    flags = _add_flag(flags, "compile__timeout", COMPILE_LOCK_TIMEOUT_S)
    environ["PYTENSOR_FLAGS"] = flags
    threads = environ.get("OMP_NUM_THREADS")
    xla = environ.get("XLA_FLAGS", "")
    if threads == "1" and "multi_thread_eigen" not in xla:
        xla = (xla + " --xla_cpu_multi_thread_eigen=false").strip()
    if "xla_backend_extra_options" not in xla:
        xla = (xla + f" --xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold={XLA_LOOP_BYTES}").strip()
    environ["XLA_FLAGS"] = xla
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(cache, "rnn-study", "jax"))
    environ.setdefault("RNN_PROGRAM_CACHE_DIR", os.path.join(cache, "rnn-study", "programs"))  # rnn.programs
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # the study's programs are small
    environ.setdefault("PJRT_NPROC", str(XLA_POOL_THREADS))


def malloc_environment(environ=os.environ):
    """Add ``MALLOC_TUNABLES`` to ``GLIBC_TUNABLES`` (keeping any tunable already set there); returns
    True if anything changed. Takes effect in processes started afterwards."""
    current = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t]
    named = {t.partition("=")[0] for t in current}
    added = [f"{k}={v}" for k, v in MALLOC_TUNABLES.items() if k not in named]
    if added:
        environ["GLIBC_TUNABLES"] = ":".join(current + added)
    return bool(added)


def import_pytensor():
    """Configure the environment, then import PyTensor: returns (pytensor, pytensor.tensor)."""
    configure_environment()
    import pytensor
    import pytensor.tensor as pt

    return pytensor, pt


def import_jax():
    """Configure the environment, then import JAX with float64 on (for code that calls JAX itself)."""
    configure_environment()
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def check(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


def mode(backend):
    """The PyTensor mode for a backend name (pass it explicitly to every pytensor.function)."""
    return BACKENDS[check(backend)]


def describe():
    """Versions and settings that decide the numbers and the speed, for logs and reports."""
    pytensor, _ = import_pytensor()
    info = {"pytensor": pytensor.__version__, "blas__ldflags": pytensor.config.blas__ldflags,
            "compiledir": str(pytensor.config.compiledir), "floatX": pytensor.config.floatX,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "jax_compilation_cache_dir": os.environ.get("JAX_COMPILATION_CACHE_DIR", ""),
            "rnn_program_cache_dir": os.environ.get("RNN_PROGRAM_CACHE_DIR", ""),
            "pjrt_nproc": os.environ.get("PJRT_NPROC", ""), "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")}
    try:
        import jax

        info.update(jax=jax.__version__, jax_devices=", ".join(str(d) for d in jax.devices()))
    except ImportError:
        info["jax"] = "not installed"
    return info
