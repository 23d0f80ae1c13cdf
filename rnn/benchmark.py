"""Training speed of each backend, single and stacked, against the hand-written reference; and the
closed-loop objective against plain JAX and its floating-point floor.

    python -m rnn.benchmark --out results/benchmark            # all backends, K in 1 8 64
    python -m rnn.benchmark --backends jax --stack 1 1024 8192  # e.g. the GPU lane

One run times, at the tutorial's size (Mackey-Glass, T=1500, H=15, float64): the per-epoch time of
``rnn.train.sgd`` (forward, BPTT, update: the project's own code path) for each backend and stack
size K, the reference Numba BPTT (``rnn.reference``) on the same data, and the cold and warm compile
time of each backend (each in a fresh process; cold with an empty compile cache). It also checks
that every backend's gradient equals the reference's. Times are medians over repeats; ratios are
per model-epoch against the reference measured in the same run. Thresholds live in the report,
not in a test.

The closed-loop objective (``rnn.rollout``: the loss of R-step continuations from every stride-th
teacher-forced state, and its gradient) is timed at closed-loop-30's sizes and at the tutorial's 15
units (``CLOSED_LOOP``) on the default backend, against ``rnn.reference.jax_closed_loop`` (the same
loss written directly in JAX: ``lax.scan``, ``value_and_grad``, ``vmap``) and against its floor, the
counted floating-point operations (``closed_loop_flops``) over the float64 matrix-product rate
measured in the same run; all three must agree on the loss and the gradient.

The study's own record (``study_rows``): SGD's ``train_seconds`` per model as a study job writes it
(``rnn.experiment.run_variant``, the baseline's 1001 epochs with the learning-curve monitor; compiling
is in ``compile_seconds``, not there), for one model and 8 stacked, against the reference's 1001
epochs timed in the same run (``STUDY_TARGETS``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

T, HIDDEN, LR, L2 = 1500, 15, 0.3, 1e-4
TARGETS = {  # ratio of the default backend's per-model-epoch time to the reference: goal, stretch
    "single (K=1)": (1, 1.0, 0.75),
    "stacked (K>=8)": (8, 0.5, 0.25),
}
CHUNK = 10  # epochs per compiled call of the training loop (rnn.train.sgd's log_every)
# the closed-loop objective: the study's closed-loop recipe's loss at its sizes, and at the tutorial's 15 units
CLOSED_LOOP = {"closed-loop-30 (H=30)": 30, "tutorial size (H=15)": 15}
CLOSED_LOOP_SHAPE = {"K": 5, "steps": 128, "stride": 4, "washout": 100}
CLOSED_LOOP_TARGET = 1.0  # the project's time over plain JAX's, at most
STUDY_TARGETS = {1: 1.25, 8: 0.5}  # K: the study's SGD train_seconds per model over the reference's, at most


def _series():
    from .data import mackey_glass

    return mackey_glass(T + 1, seed=0)[0][:T]


def _median_epoch_seconds(run_epochs, budget_s, max_epochs, repeats):
    """Median over repeats of the seconds per epoch; each repeat runs about ``budget_s``, in whole
    chunks of ``CHUNK`` epochs (the first call, compiling, is not timed)."""
    run_epochs(CHUNK)
    t0 = time.perf_counter()
    run_epochs(CHUNK)
    once = max((time.perf_counter() - t0) / CHUNK, 1e-6)
    n = CHUNK * int(max(1, min(max_epochs, budget_s / once) // CHUNK))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_epochs(n)
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times)), n


def reference_row(x, repeats, max_epochs, budget_s):
    from . import reference
    from .model import Spec, init_params

    params = {k: v[0].copy() for k, v in init_params(Spec(), [0]).items()}
    reference.sgd_epoch(x, params, LR, L2)  # JIT (cached on disk after the first run)

    def run(n):
        for _ in range(n):
            reference.sgd_epoch(x, params, LR, L2)

    sec, n = _median_epoch_seconds(run, budget_s, max_epochs, repeats)
    return {"implementation": "reference (Numba BPTT)", "backend": "numba-handwritten", "K": 1,
            "ms_per_epoch": 1e3 * sec, "ms_per_model_epoch": 1e3 * sec, "epochs_per_repeat": n}


def backend_row(backend, K, x, repeats, max_epochs, budget_s):
    from . import reference
    from .compiled import Compiled
    from .model import Spec, init_params
    from .train import sgd

    spec = Spec(hidden=HIDDEN)
    compiled = Compiled(spec, K, T, T, 1, backend)
    seeds = list(range(K))
    params = init_params(spec, seeds)
    t0 = time.perf_counter()
    _, _, grads = compiled.loss_and_grad(x, params)
    first_call = time.perf_counter() - t0
    _, ref_grads = reference.loss_and_grad(x, *(params[n][0] for n in reference.NAMES), L2)
    grad_diff = max(float(np.max(np.abs(grads[n][0] - g)) / (np.max(np.abs(g)) + 1e-300))
                    for n, g in zip(reference.NAMES, ref_grads))
    state = {"p": params}

    def run(n):
        # epochs 1..n: whole chunks of CHUNK (a chunk ends at every epoch divisible by CHUNK)
        state["p"] = sgd(compiled, x, state["p"], seeds, LR, n, log_every=CHUNK, first_epoch=1)[0]

    sec, n = _median_epoch_seconds(run, budget_s, max_epochs, repeats)
    return {"implementation": f"pytensor {backend}", "backend": backend, "K": K,
            "ms_per_epoch": 1e3 * sec, "ms_per_model_epoch": 1e3 * sec / K, "epochs_per_repeat": n,
            "first_call_seconds": first_call, "grad_max_rel_diff_vs_reference": grad_diff}


def compile_seconds(backend, K, cache_dir):
    """Seconds to build and first call the loss function in a fresh process using ``cache_dir`` for every
    compile cache (PyTensor's, Numba's, XLA's and ``rnn.programs``')."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = ",".join(f for f in (env.get("PYTENSOR_FLAGS", ""), f"base_compiledir={cache_dir}") if f)
    env["NUMBA_CACHE_DIR"] = str(Path(cache_dir) / "numba")
    env["JAX_COMPILATION_CACHE_DIR"] = str(Path(cache_dir) / "xla")
    env["RNN_PROGRAM_CACHE_DIR"] = str(Path(cache_dir) / "programs")  # rnn.programs
    cmd = [sys.executable, "-m", "rnn.benchmark", "--compile-only", backend, "--stack", str(K)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def _compile_only(backend, K):
    t0 = time.perf_counter()
    from .compiled import Compiled
    from .model import Spec, init_params

    spec = Spec(hidden=HIDDEN)
    Compiled(spec, K, T, T, 1, backend).loss_and_grad(_series(), init_params(spec, range(K)))
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def closed_loop_flops(H, K, T, steps, N):
    """Floating-point operations (multiplies and adds counted apart) of one evaluation of the closed-loop
    loss and its gradient, the products only: for each of the (steps - 1) free-running steps of each of
    the N continuations, the recurrent product forward and backward and the recurrent weights' gradient
    (3 x 2H^2) and the input and read-out terms forward and backward (4 x 2H); for each teacher-forced
    step the three recurrent products. Elementwise work (tanh, its slope) is left out: a floor."""
    return K * ((steps - 1) * N * (6 * H * H + 8 * H) + T * 6 * H * H)


def matmul_gflops(n=768, repeats=5):
    """The float64 matrix-product rate of this machine as XLA runs it (GFLOP/s, median over repeats)."""
    from .backends import import_jax

    jax = import_jax()
    import jax.numpy as jnp
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)))
    product = jax.jit(lambda m: m @ m)
    product(a).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        product(a).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


def _median_seconds(call, repeats):
    call()  # compiles
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def closed_loop_rows(backend="jax", repeats=5, sizes=CLOSED_LOOP, shape=CLOSED_LOOP_SHAPE):
    """The closed-loop objective: project, plain JAX and floor per size (see the module docstring)."""
    from . import reference
    from .compiled import Compiled
    from .model import Spec, init_params

    K, R, stride, washout = shape["K"], shape["steps"], shape["stride"], shape["washout"]
    x = _series()
    N = len(range(washout, T - R, stride))
    rate = matmul_gflops()
    rows = []
    for name, H in sizes.items():
        spec = Spec(hidden=H, init_scale_in=0.5, init_scale_rec=0.2, init_scale_out=0.1, l2=0.0, rollout_steps=R,
                    rollout_stride=stride, washout=washout)
        params = init_params(spec, range(K))
        compiled = Compiled(spec, K, T, T, 1, backend)
        plain = reference.jax_closed_loop(T, R, stride, washout)
        _, mse, grads = compiled.loss_and_grad(x, params)
        mse_ref, grads_ref = plain(x, params)
        agree = max([float(np.max(np.abs(mse - mse_ref) / np.abs(mse_ref)))]
                    + [float(np.max(np.abs(grads[n] - g)) / np.max(np.abs(g))) for n, g in grads_ref.items()])
        project = _median_seconds(lambda: compiled.loss_and_grad(x, params), repeats)
        jax_s = _median_seconds(lambda: plain(x, params), repeats)
        flops = closed_loop_flops(H, K, T, R, N)
        floor = flops / (rate * 1e9)
        for implementation, seconds in ((f"pytensor {backend} (the project)", project),
                                        ("plain JAX (lax.scan, value_and_grad, vmap)", jax_s),
                                        (f"floor: {flops / 1e9:.3g} GFLOP at {rate:.3g} GFLOP/s", floor)):
            rows.append({"size": name, "hidden": H, "K": K, "steps": R, "starts": N, "implementation": implementation,
                         "ms": 1e3 * seconds, "ratio_to_plain_jax": seconds / jax_s,
                         "max_rel_diff_vs_plain_jax": agree if "project" in implementation else 0.0})
    return rows


def study_rows(backend="jax", stack=tuple(STUDY_TARGETS), repeats=3):
    """The baseline's SGD as the study trains it, per model, against the reference's 1001 epochs (medians)."""
    from . import reference
    from .data import mackey_glass
    from .experiment import run_variant
    from .model import Spec, init_params
    from .settings import BASELINE

    epochs, train, validation, horizon = BASELINE["epochs"], T, 500, 1000
    series = mackey_glass(train + validation + horizon, seed=0)[0]
    x = np.ascontiguousarray(series[:train])
    settings = {**BASELINE, "bfgs_maxiter": 1}

    def reference_seconds():
        params = {k: v[0].copy() for k, v in init_params(Spec(), [0]).items()}
        t0 = time.perf_counter()
        for _ in range(epochs):
            reference.sgd_epoch(x, params, LR, L2)
        return time.perf_counter() - t0

    reference_seconds()  # JIT
    ref = float(np.median([reference_seconds() for _ in range(repeats)]))
    rows = [{"implementation": "reference (Numba BPTT)", "K": 1, "train_seconds_per_model": ref,
             "compile_seconds": float("nan"), "ratio_to_reference": 1.0, "target": float("nan")}]
    for K in stack:
        runs = [run_variant(series, settings, seeds=range(K), optimizers=["sgd"], backend=backend, train=train,
                            validation=validation, horizon=horizon) for _ in range(repeats)]
        per_model = float(np.median([r["rows"][0]["train_seconds"] for r in runs]))
        rows.append({"implementation": f"the study ({backend}, run_variant)", "K": K,
                     "train_seconds_per_model": per_model,
                     "compile_seconds": float(np.median([r["timing"]["compile_seconds"] for r in runs])),
                     "ratio_to_reference": per_model / ref, "target": STUDY_TARGETS.get(K, float("nan"))})
    return rows


def study_markdown(table):
    """The study's SGD training time against the reference, with the targets."""
    from .study import markdown_table

    lines = ["## The study's SGD training (the baseline's 1001 epochs; train_seconds per model, median)", "",
             markdown_table(table), "", "| K | ratio to reference | target | met |", "|---|---|---|---|"]
    for _, row in table.iloc[1:].iterrows():
        if np.isfinite(row["target"]):
            met = "yes" if row["ratio_to_reference"] <= row["target"] else "no"
            lines.append(f"| {row['K']} | {row['ratio_to_reference']:.2f} | ≤ {row['target']:g} | {met} |")
    return "\n".join(lines + [""])


def run(backends=("c", "jax", "numba"), stack=(1, 8, 64), repeats=5, max_epochs=200, budget_s=0.5,
        compile_times=True, log=print):
    """All measurements as a list of row dicts (see module docstring)."""
    x = _series()
    rows = [reference_row(x, repeats, max_epochs, budget_s)]
    ref = rows[0]["ms_per_model_epoch"]
    log(f"reference: {ref:.3f} ms/epoch")
    for backend in backends:
        cold = warm = float("nan")
        if compile_times:
            with tempfile.TemporaryDirectory() as cache:
                cold = compile_seconds(backend, 1, cache)
                warm = compile_seconds(backend, 1, cache)
            log(f"{backend}: compile cold {cold:.1f} s, warm {warm:.1f} s")
        for K in stack:
            row = backend_row(backend, K, x, repeats, max_epochs, budget_s)
            row.update(cold_compile_seconds=cold, warm_compile_seconds=warm)
            rows.append(row)
            log(f"{backend} K={K}: {row['ms_per_model_epoch']:.3f} ms per model-epoch "
                f"({row['ms_per_model_epoch'] / ref:.2f}x reference), grad diff {row['grad_max_rel_diff_vs_reference']:.1e}")
    for row in rows:
        row["ratio_to_reference"] = row["ms_per_model_epoch"] / ref
    return rows


def targets_markdown(table, default_backend):
    """The issue's targets against this run's ratios for the default backend."""
    lines = [f"| target ({default_backend}) | ratio to reference | goal | stretch | met |", "|---|---|---|---|---|"]
    part = table[table["backend"] == default_backend]
    for name, (min_k, goal, stretch) in TARGETS.items():
        rows = part[part["K"] >= min_k] if min_k > 1 else part[part["K"] == 1]
        if rows.empty:
            continue
        ratio = float(rows["ratio_to_reference"].min())
        met = "stretch" if ratio <= stretch else ("yes" if ratio <= goal else "no")
        lines.append(f"| {name} | {ratio:.2f} | ≤ {goal} | ≤ {stretch} | {met} |")
    return "\n".join(lines)


def closed_loop_markdown(table):
    """The closed-loop section of the report: times, ratios and the target."""
    from .study import markdown_table

    lines = ["## The closed-loop objective (loss and gradient, one evaluation; median)", "",
             markdown_table(table[["size", "implementation", "ms", "ratio_to_plain_jax", "max_rel_diff_vs_plain_jax"]]),
             "", "| size | project / plain JAX | target | met | gap to the floor |", "|---|---|---|---|---|"]
    for size, part in table.groupby("size", sort=False):
        ratio = float(part["ratio_to_plain_jax"].iloc[0])
        floor = float(part["ms"].iloc[0] / part["ms"].iloc[2])
        lines.append(f"| {size} | {ratio:.2f} | ≤ {CLOSED_LOOP_TARGET} | {'yes' if ratio <= CLOSED_LOOP_TARGET else 'no'} "
                     f"| {floor:.2f}× the floor |")
    return "\n".join(lines + [""])


def write(rows, out_dir, default_backend="jax", closed_loop=None, study=None):
    import pandas as pd

    from . import io, plots
    from .backends import describe
    from .study import markdown_table

    out_dir = Path(out_dir)
    table = pd.DataFrame(rows)
    io.save_csv(out_dir / "benchmark.csv", table)
    cols = ["implementation", "K", "ms_per_epoch", "ms_per_model_epoch", "ratio_to_reference",
            "cold_compile_seconds", "warm_compile_seconds", "grad_max_rel_diff_vs_reference"]
    shown = table[[c for c in cols if c in table]]
    info = describe()
    text = ["# Training speed (median per-epoch time, T=1500, H=15, float64)", "",
            f"Machine: {os.cpu_count()} CPUs; PyTensor {info['pytensor']}, JAX {info.get('jax')}, "
            f"devices: {info.get('jax_devices', '?')}; C BLAS: `{info['blas__ldflags'] or 'none'}`.", "",
            markdown_table(shown),
            "", targets_markdown(table, default_backend), ""]
    if closed_loop:
        frame = pd.DataFrame(closed_loop)
        io.save_csv(out_dir / "closed_loop.csv", frame)
        text.append(closed_loop_markdown(frame))
    if study:
        frame = pd.DataFrame(study)
        io.save_csv(out_dir / "study.csv", frame)
        text.append(study_markdown(frame))
    io.save_text(out_dir / "benchmark.md", "\n".join(text))
    fig = plots.benchmark(table)
    io.save_figure(out_dir / "benchmark.png", fig, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=["c", "jax", "numba"], choices=["c", "jax", "numba"])
    ap.add_argument("--stack", nargs="+", type=int, default=[1, 8, 64], help="numbers of stacked models K")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-epochs", type=int, default=200, help="at most this many epochs per repeat")
    ap.add_argument("--no-compile-times", action="store_true", help="skip the cold/warm compile measurements")
    ap.add_argument("--no-closed-loop", action="store_true", help="skip the closed-loop objective's timing")
    ap.add_argument("--no-study", action="store_true", help="skip the study's own SGD training time")
    ap.add_argument("--default-backend", default="jax")
    ap.add_argument("--out", default="results/benchmark", help="folder for benchmark.csv/.md/.png")
    ap.add_argument("--compile-only", metavar="BACKEND", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compile_only:
        return _compile_only(args.compile_only, args.stack[0])
    for name in ("repeats", "max_epochs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.stack) < 1:
        ap.error("--stack values must be >= 1")
    rows = run(args.backends, args.stack, args.repeats, args.max_epochs,
               compile_times=not args.no_compile_times, log=lambda m: print(m, flush=True))
    closed = None
    if not args.no_closed_loop:
        closed = closed_loop_rows(args.default_backend, args.repeats)
        for row in closed:
            print(f"closed loop, {row['size']}: {row['implementation']}: {row['ms']:.1f} ms "
                  f"({row['ratio_to_plain_jax']:.2f}x plain JAX)", flush=True)
    study = None
    if not args.no_study:
        study = study_rows(args.default_backend, repeats=min(args.repeats, 3))
        for row in study[1:]:
            print(f"the study's SGD, K={row['K']}: {row['train_seconds_per_model']:.3f} s per model "
                  f"({row['ratio_to_reference']:.2f}x the reference's {study[0]['train_seconds_per_model']:.3f} s)",
                  flush=True)
    write(rows, args.out, args.default_backend, closed, study)


if __name__ == "__main__":
    main()
