"""rnn.model: the scan graphs against a NumPy transcription of the model, finite differences,
autodiff, stacking, the three backends, closed-loop generation and the initial parameters."""

import numpy as np
import pytest

from rnn import backends, metrics
from rnn.data import mackey_glass
from rnn.compiled import Compiled
from rnn.model import NONLINEARITIES, Spec, init_params
from rnn.train import sgd

from numpy_model import np_cost, np_step, np_teacher_forced, random_noise, random_params, rel_err, slot

T = 40  # training length of the small models
H = 3


SWITCHES = {
    "tanh": Spec(hidden=H),
    "sigmoid": Spec(hidden=H, nonlinearity="sigmoid"),
    "relu": Spec(hidden=H, nonlinearity="relu"),
    "linear": Spec(hidden=H, nonlinearity="linear"),
    "skip": Spec(hidden=H, skip=True),
    "weight_noise": Spec(hidden=H, weight_noise=0.1),
    "l1": Spec(hidden=H, l1=0.02, l2=0.0),
    "l2": Spec(hidden=H, l2=0.05),
    "wide": Spec(hidden=26, skip=True, l2=0.01),
}


@pytest.fixture(scope="module")
def series():
    return mackey_glass(200, seed=0)[0]


def switch_case(name):
    spec = SWITCHES[name]
    # the same recurrent gain at every width: std 0.5 at H=3, shrinking as 1/sqrt(H)
    params = random_params(spec, 1, seed=sorted(SWITCHES).index(name), scale=0.5 * min(1.0, np.sqrt(H / spec.hidden)))
    noise = random_noise(spec, 1, seed=99) if spec.weight_noise > 0 else None
    return spec, params, noise


def cost_at(compiled, x, params, noise):
    return float(compiled.loss_and_grad(x, params, noise)[0][0])


@pytest.mark.parametrize("name", SWITCHES)
def test_cost_matches_numpy_transcription(compiled_model, series, name):
    spec, params, noise = switch_case(name)
    x = series[:T]
    cost, mse, _ = compiled_model(spec, 1, T).loss_and_grad(x, params, noise)
    want_cost, want_mse = np_cost(spec, x, slot(params, 0), noise and slot(noise, 0))
    assert cost.shape == (1,) and mse.shape == (1,)
    assert cost[0] == pytest.approx(want_cost, rel=1e-12)
    assert mse[0] == pytest.approx(want_mse, rel=1e-12)


@pytest.mark.parametrize("name", SWITCHES)
def test_gradient_matches_central_finite_differences(compiled_model, series, name):
    spec, params, noise = switch_case(name)
    x = series[:T]
    compiled = compiled_model(spec, 1, T)
    _, _, grads = compiled.loss_and_grad(x, params, noise)
    eps = 1e-6
    for n, value in params.items():
        assert grads[n].shape == value.shape
        fd = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus = {**params, n: value.copy()}
            minus = {**params, n: value.copy()}
            plus[n][i] += eps
            minus[n][i] -= eps
            fd[i] = (cost_at(compiled, x, plus, noise) - cost_at(compiled, x, minus, noise)) / (2 * eps)
        assert np.max(np.abs(fd)) > 1e-4, f"{n}: the test should exercise a non-trivial gradient"
        assert rel_err(grads[n], fd) < 1e-6, f"{n}: bptt {grads[n].ravel()} vs fd {fd.ravel()}"


def test_weight_noise_enters_the_cost_and_defaults_to_zero(compiled_model, series):
    spec, params, noise = switch_case("weight_noise")
    x = series[:T]
    compiled = compiled_model(spec, 1, T)
    noisy = compiled.loss_and_grad(x, params, noise)
    default = compiled.loss_and_grad(x, params)
    zero = compiled.loss_and_grad(x, params, {n: np.zeros_like(v) for n, v in noise.items()})
    clean = np_cost(spec, x, slot(params, 0))
    assert abs(noisy[0][0] - default[0][0]) > 1e-6  # the noise matters
    assert default[0][0] == zero[0][0] == pytest.approx(clean[0], rel=1e-12)


@pytest.mark.parametrize("name", SWITCHES)
def test_bptt_equals_autodiff(compiled_model, series, name):
    spec, params, noise = switch_case(name)
    x = series[:T]
    by_hand = compiled_model(spec, 1, T, gradient="bptt").loss_and_grad(x, params, noise)
    auto = compiled_model(spec, 1, T, gradient="autodiff").loss_and_grad(x, params, noise)
    assert rel_err(by_hand[0], auto[0]) < 1e-12
    assert rel_err(by_hand[1], auto[1]) < 1e-12
    for n in params:
        assert rel_err(by_hand[2][n], auto[2][n]) < 1e-10, n


STACK_SPEC = Spec(hidden=4, skip=True, weight_noise=0.05)
SEEDS = [0, 1, 2]


def test_stacked_models_give_each_models_own_cost_and_gradient(compiled_model, series):
    x = series[:T]
    stacked = compiled_model(STACK_SPEC, 3, T)
    alone = compiled_model(STACK_SPEC, 1, T)
    params = random_params(STACK_SPEC, 3, seed=5, scale=0.3)
    noise = random_noise(STACK_SPEC, 3, seed=6)
    cost, mse, grads = stacked.loss_and_grad(x, params, noise)
    assert cost.shape == (3,) and np.all(np.diff(cost) != 0)  # three different models
    for k in range(3):
        one = {n: v[k:k + 1] for n, v in params.items()}
        c1, m1, g1 = alone.loss_and_grad(x, one, {n: v[k:k + 1] for n, v in noise.items()})
        assert rel_err(cost[k], c1[0]) <= 1e-10
        assert rel_err(mse[k], m1[0]) <= 1e-10
        for n in grads:
            assert rel_err(grads[n][k], g1[n][0]) <= 1e-10, n


def test_stacked_sgd_equals_one_model_at_a_time(compiled_model, series):
    x = series[:T]
    start = init_params(STACK_SPEC, SEEDS)
    p3, curve3, div3 = sgd(compiled_model(STACK_SPEC, 3, T), x, start, SEEDS, lr=0.3, epochs=5, log_every=1)
    assert not div3.any()
    assert len(curve3) == 5 * 3
    for k, seed in enumerate(SEEDS):
        p1, curve1, div1 = sgd(compiled_model(STACK_SPEC, 1, T), x, init_params(STACK_SPEC, [seed]), [seed],
                               lr=0.3, epochs=5, log_every=1)
        assert not div1.any()
        for n in p3:
            assert rel_err(p3[n][k], p1[n][0]) <= 1e-10, n
        costs3 = [r["cost"] for r in curve3 if r["seed"] == seed]
        costs1 = [r["cost"] for r in curve1]
        assert rel_err(costs3, costs1) <= 1e-10


def test_sgd_moves_every_parameter(compiled_model, series):
    x = series[:T]
    start = init_params(STACK_SPEC, SEEDS)
    params, _, _ = sgd(compiled_model(STACK_SPEC, 3, T), x, start, SEEDS, lr=0.3, epochs=5)
    for n in start:
        assert np.all(np.any((params[n] != start[n]).reshape(3, -1), axis=1)), n


# --- the three backends give the same numbers at the tutorial's sizes -----------------------------

@pytest.fixture(scope="module")
def trained_on_each_backend():
    series = mackey_glass(2000, seed=0)[0]
    x = np.ascontiguousarray(series[:1500])
    spec = Spec()
    out = {}
    for backend in backends.BACKENDS:
        compiled = Compiled(spec, 1, 1500, 2000, 500, backend=backend)
        start = init_params(spec, [0])
        first = compiled.loss_and_grad(x, start)[1][0]
        params, curve, diverged = sgd(compiled, x, start, [0], lr=0.3, epochs=20, log_every=5)
        out[backend] = {"first": first, "mse": compiled.loss_and_grad(x, params)[1][0], "params": params,
                        "curve": [r["cost"] for r in curve], "diverged": diverged}
    return out


def test_backends_agree_after_20_sgd_epochs_at_tutorial_sizes(trained_on_each_backend):
    runs = trained_on_each_backend
    assert set(runs) == {"c", "jax", "numba"}
    ref = runs["jax"]
    assert not ref["diverged"].any()
    assert ref["mse"] < ref["first"]  # training did something
    for backend, run in runs.items():
        assert run["mse"] == pytest.approx(ref["mse"], rel=1e-8), backend
        assert rel_err(run["curve"], ref["curve"]) <= 1e-8, backend
        for n in ref["params"]:
            assert rel_err(run["params"][n], ref["params"][n]) <= 1e-8, (backend, n)


# --- closed-loop generation ---------------------------------------------------------------------

GEN_SPECS = {"tanh": Spec(hidden=4), "relu_skip": Spec(hidden=4, nonlinearity="relu", skip=True),
             "wide": Spec(hidden=26)}


@pytest.mark.parametrize("name", GEN_SPECS)
@pytest.mark.parametrize("horizon", [1, 25])
def test_generation_continues_from_the_teacher_forced_prediction(compiled_model, series, name, horizon):
    spec = GEN_SPECS[name]
    train, length, K = 50, 120, 2
    params = random_params(spec, K, seed=11, scale=0.4 * min(1.0, np.sqrt(4 / spec.hidden)))
    x_full = series[:length]
    y, cont = compiled_model(spec, K, train, length, horizon).generate(x_full, params)
    assert y.shape == (length, K)
    assert cont.shape == (horizon, K)
    for k in range(K):
        q = slot(params, k)
        hs, ys = np_teacher_forced(spec, x_full, q)
        assert rel_err(y[:, k], ys) < 1e-12
        assert cont[0, k] == y[train - 1, k]  # the prediction of x_train made from x_0..x_{train-1}
        h, y_prev = hs[train - 1], cont[0, k]
        fed_back = [y_prev]
        for _ in range(horizon - 1):
            h, y_prev = np_step(spec, y_prev, h, q)
            fed_back.append(y_prev)
        assert rel_err(cont[:, k], fed_back) < 1e-10
        if horizon > 1:  # the continuation does not depend on the truth after x_train-1
            other = x_full.copy()
            other[train:] = 0.0
            assert np.array_equal(compiled_model(spec, K, train, length, horizon).generate(other, params)[1], cont)


def test_training_mse_is_the_one_step_mse_of_the_generated_predictions(compiled_model, series):
    spec = Spec(hidden=4)
    train, length = 60, 150
    params = random_params(spec, 2, seed=3, scale=0.4)
    _, mse, _ = compiled_model(spec, 2, train).loss_and_grad(series[:train], params)
    y, _ = compiled_model(spec, 2, train, length, 1).generate(series[:length], params)
    for k in range(2):
        assert mse[k] == pytest.approx(metrics.one_step_mse(y[:, k], series[:length], 1, train), rel=1e-12)


# --- initial parameters ------------------------------------------------------------------------

def test_init_params_are_reproducible_and_per_seed():
    spec = Spec()
    a, b = init_params(spec, [0, 1, 2]), init_params(spec, [0, 1, 2])
    assert list(a) == ["w_xh", "w_hh", "b_h", "w_ho", "b_o"]
    for n, shape in spec.param_shapes.items():
        assert a[n].shape == (3, *shape) and a[n].dtype == np.float64
        assert np.array_equal(a[n], b[n])
        for k, seed in enumerate([0, 1, 2]):  # model k's draw does not depend on its neighbours
            assert np.array_equal(a[n][k], init_params(spec, [seed])[n][0])
            assert np.array_equal(a[n][k], init_params(spec, [7, seed])[n][1])
    assert not np.array_equal(a["w_hh"][0], a["w_hh"][1])
    assert not np.any(a["b_h"]) and not np.any(a["b_o"])


def test_init_params_use_the_spec_scales():
    spec = Spec(hidden=40, init_scale_in=0.1, init_scale_rec=0.02, init_scale_out=0.5)
    p = init_params(spec, [3])
    assert p["w_xh"].std() == pytest.approx(0.1, rel=0.3)
    assert p["w_hh"].std() == pytest.approx(0.02, rel=0.1)
    assert p["w_ho"].std() == pytest.approx(0.5, rel=0.3)


def test_skip_variant_starts_from_the_baselines_weights():
    base = init_params(Spec(), [0, 5])
    skip = init_params(Spec(skip=True), [0, 5])
    assert set(skip) == set(base) | {"w_xo"}
    for n in base:
        assert np.array_equal(skip[n], base[n]), n
    assert skip["w_xo"].shape == (2, 1, 1) and not np.any(skip["w_xo"])


def test_nonlinearity_does_not_change_the_initial_weights():
    base = init_params(Spec(), [4])
    for name in NONLINEARITIES:
        other = init_params(Spec(nonlinearity=name, weight_noise=0.1, l1=0.1), [4])
        assert all(np.array_equal(other[n], base[n]) for n in base)


def test_spec_from_dict_ignores_training_keys_and_round_trips():
    spec = Spec.from_dict({"hidden": 7, "skip": True, "lr": 0.1, "epochs": 3})
    assert spec == Spec(hidden=7, skip=True)
    assert Spec.from_dict(spec.to_dict()) == spec
    assert Spec().to_dict()["hidden"] == 15 and Spec().to_dict()["l2"] == 1e-4


# --- bad input ---------------------------------------------------------------------------------

def test_spec_rejects_an_unknown_nonlinearity_naming_the_choices():
    with pytest.raises(ValueError, match=r"nonlinearity: 'softplus' is not one of \['tanh', 'sigmoid', 'relu', 'linear'\]"):
        Spec(nonlinearity="softplus")


@pytest.mark.parametrize("hidden", [0, -3, 2.5, True])
def test_spec_rejects_a_bad_hidden_size(hidden):
    with pytest.raises(ValueError, match=r"hidden: .*(minimum of 1|not of type)"):
        Spec(hidden=hidden)


@pytest.mark.parametrize("name", ["init_scale_in", "init_scale_rec", "init_scale_out", "weight_noise", "l1", "l2"])
@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_spec_rejects_negative_or_non_finite_scales(name, value):
    with pytest.raises(ValueError, match=rf"{name}: .*(minimum of 0|finite number|not of type)"):
        Spec(**{name: value})


def test_spec_rejects_a_non_boolean_skip():
    with pytest.raises(ValueError, match="skip: .*is not of type 'boolean'"):
        Spec(skip="yes")


def test_unknown_backend_is_rejected_naming_the_choices():
    with pytest.raises(ValueError, match=r"backend must be one of c, jax, numba; got 'cuda'"):
        Compiled(Spec(hidden=2), 1, 10, 10, 1, backend="cuda")
    with pytest.raises(ValueError, match=r"backend must be one of c, jax, numba; got 'JAX'"):
        backends.mode("JAX")
    assert [backends.mode(b) for b in ("c", "jax", "numba")] == ["CVM", "JAX", "NUMBA"]


def test_unknown_gradient_is_rejected_naming_the_choices():
    with pytest.raises(ValueError, match=r"gradient must be 'bptt' or 'autodiff'.*'numeric'"):
        Compiled(Spec(hidden=2), 1, 10, 10, 1, gradient="numeric")


# --- XLA's small-loop threshold -------------------------------------------------------------

def test_backend_sets_the_xla_loop_threshold_unless_the_user_did():
    environ = {"OMP_NUM_THREADS": "1"}
    backends.configure_environment(environ)
    assert f"xla_cpu_small_while_loop_byte_threshold={backends.XLA_LOOP_BYTES}" in environ["XLA_FLAGS"]
    assert "--xla_cpu_multi_thread_eigen=false" in environ["XLA_FLAGS"]
    mine = {"XLA_FLAGS": "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=64"}
    backends.configure_environment(mine)
    assert mine["XLA_FLAGS"].count("xla_backend_extra_options") == 1 and mine["XLA_FLAGS"].endswith("=64")


_NUMBERS = (
    "import sys, numpy as np\n"
    "from rnn.compiled import Compiled\nfrom rnn.model import Spec, init_params\nfrom rnn.data import mackey_glass\n"
    "s = mackey_glass(700, seed=0)[0]\nout = {}\n"
    "for H, K in [(15, 1), (15, 8), (30, 3)]:\n"
    "    spec = Spec(hidden=H); p = init_params(spec, range(K)); c = Compiled(spec, K, 500, 700, 150)\n"
    "    cost, mse, g = c.loss_and_grad(np.ascontiguousarray(s[:500]), p)\n"
    "    y, cont = c.generate(s, p)\n"
    "    out.update({f'{H}_{K}_{n}': v for n, v in g.items()}, **{f'{H}_{K}_mse': mse, f'{H}_{K}_y': y, f'{H}_{K}_c': cont})\n"
    "np.savez(sys.argv[1], **out)\n")


def _numbers(folder, xla_flags=None):
    """Losses, gradients, predictions and continuations of three small stacked models, computed in a fresh
    process with ``xla_flags`` (None: the package's) and JAX's compile cache in ``folder``/cache."""
    import os
    import subprocess
    import sys

    folder.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_COMPILATION_CACHE_DIR"] = str(folder / "cache")
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    path = folder / f"numbers-{len(list(folder.glob('numbers-*')))}.npz"
    subprocess.run([sys.executable, "-c", _NUMBERS, str(path)], env=env, check=True, capture_output=True)
    return np.load(path)


def test_a_compiled_program_from_the_persistent_cache_gives_the_same_bits(tmp_path):
    """The same code on the same machine: compiled fresh, then loaded from JAX's compile cache, every number
    is bitwise the same (what verify's exact rule for SGD on the publishing machine relies on)."""
    fresh = _numbers(tmp_path)
    cached_programs = list((tmp_path / "cache").iterdir())
    assert cached_programs, "nothing was written to the compile cache"
    again = _numbers(tmp_path)
    assert sorted((tmp_path / "cache").iterdir()) == sorted(cached_programs)  # all loaded, none compiled anew
    for key in fresh.files:
        assert np.array_equal(fresh[key], again[key]), key


LAST_BITS_RTOL = 1e-9  # what a change of compiled loop may move a number by: far below verify's resolution floor


def test_the_xla_loop_threshold_leaves_every_number_within_verifys_tolerance(tmp_path):
    """Loss, gradients, predictions and continuations with XLA's default loop threshold and ours: within 1e-9
    relative, not bitwise, and so far inside the resolution below which verify sees no difference on another
    machine (rnn.verify.RESOLUTION_RTOL). The two thresholds compile a loop whole or step by step, and on
    some CPUs (an AMD EPYC, not an Intel Xeon) the two codes round a decaying continuation's last bit
    differently; the same code on the same machine is bitwise repeatable (tests/workflow/test_faults.py:
    two clean runs)."""
    from rnn.verify import RESOLUTION_RTOL

    assert LAST_BITS_RTOL < RESOLUTION_RTOL
    default = _numbers(tmp_path / "default", "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=1024")
    raised = _numbers(tmp_path / "raised")
    assert sorted(default.files) == sorted(raised.files)
    for key in default.files:
        np.testing.assert_allclose(raised[key], default[key], rtol=LAST_BITS_RTOL, atol=1e-300, err_msg=key)


# --- glibc's malloc tunables ----------------------------------------------------------------

def test_malloc_tunables_are_added_unless_the_user_set_them():
    environ = {}
    assert backends.malloc_environment(environ)
    assert environ["GLIBC_TUNABLES"] == ":".join(f"{k}={v}" for k, v in backends.MALLOC_TUNABLES.items())
    assert not backends.malloc_environment(environ)  # nothing left to add
    mine = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4:glibc.pthread.rseq=0"}
    assert backends.malloc_environment(mine)
    tunables = mine["GLIBC_TUNABLES"].split(":")
    assert tunables[:2] == ["glibc.malloc.arena_max=4", "glibc.pthread.rseq=0"]  # the user's, first and kept
    assert [t.partition("=")[0] for t in tunables].count("glibc.malloc.arena_max") == 1
    assert {t.partition("=")[0] for t in tunables} >= set(backends.MALLOC_TUNABLES)


_CLOSED_LOOP = (  # closed-loop-60's shapes: its horizon-128 call frees and reallocates ~70 MB of temporaries
    "import hashlib, json, resource, sys, numpy as np\n"
    "from rnn.compiled import Compiled\nfrom rnn.model import Spec, init_params\nfrom rnn.data import mackey_glass\n"
    "s = mackey_glass(1500, seed=0)[0]\n"
    "spec = Spec(hidden=60, init_scale_in=1.0, init_scale_rec=0.14, init_scale_out=0.1, rollout_steps=128,"
    " rollout_stride=8)\n"
    "p = init_params(spec, range(5)); c = Compiled(spec, 5, 1500, 1500, 1)\n"
    "x = np.ascontiguousarray(s[:1500]); [c.loss_and_grad(x, p) for _ in range(5)]  # the heap settles\n"
    "faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; digest = hashlib.sha256()\n"
    "for _ in range(10):\n"
    "    cost, mse, g = c.loss_and_grad(x, p)\n"
    "    digest.update(cost.tobytes()); [digest.update(g[n].tobytes()) for n in sorted(g)]\n"
    "faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 10\n"
    "print(json.dumps({'digest': digest.hexdigest(), 'faults': faults}))\n")


def _closed_loop_call(tmp_path, tunables=True, prefix=()):
    """Digest of ten closed-loop calls and their page faults per call, in a fresh process started with
    or without the malloc tunables, after the command ``prefix`` (e.g. taskset)."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "PJRT_NPROC")}
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "cache")
    if tunables:
        backends.malloc_environment(env)
    out = subprocess.run([*prefix, sys.executable, "-c", _CLOSED_LOOP], env=env, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_malloc_tunables_move_buffers_not_numbers(tmp_path):
    """With the tunables, a closed-loop call reuses the memory the last one freed instead of faulting it in
    from the kernel (on glibc: 18 000 faults a call without them at these sizes, none in most calls with
    them once the heap has grown to its working size); loss and gradient are bitwise the same."""
    import platform

    plain, tuned = _closed_loop_call(tmp_path, False), _closed_loop_call(tmp_path, True)
    assert tuned["digest"] == plain["digest"]
    if platform.libc_ver()[0] == "glibc":
        assert plain["faults"] > 5000, plain  # the temporaries came back from the kernel on every call
        assert tuned["faults"] < plain["faults"] / 3, (tuned, plain)  # most calls fault nothing in


def test_a_job_given_one_cpu_computes_the_same_numbers(tmp_path):
    """XLA sizes its thread pool by the CPUs a process may use, and the pool's size changes some results'
    last bits (pools of 1 and 2 differ at these sizes on this project's machine); ``backends.XLA_POOL_THREADS``
    fixes it, so a job limited to one CPU (taskset here, a cluster's allocation there) computes what an
    unrestricted one does."""
    import os
    import shutil

    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs taskset and at least two CPUs")
    assert _closed_loop_call(tmp_path, prefix=("taskset", "-c", "0"))["digest"] == _closed_loop_call(tmp_path)["digest"]
