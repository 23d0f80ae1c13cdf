"""rnn.train and rnn.experiment: SGD, divergence handling, lock-step BFGS, train_all, run_variant,
the tutorial's result, and the checks of training settings and segments."""

import numpy as np
import pytest
from scipy.optimize import check_grad, minimize

from rnn import train
from rnn.data import mackey_glass
from rnn.experiment import check_segments, run_variant
from rnn.model import Compiled, Spec, init_params
from rnn.train import bfgs, check_settings, sgd, train_all

T = 60
SPEC = Spec(hidden=4)
SEEDS = [0, 1, 2]
# relu with a large recurrent init: at lr 0.3 seed 2 blows up within 30 epochs, seeds 0 and 1 train
DIVERGING = Spec(hidden=4, nonlinearity="relu", init_scale_rec=1.0)


@pytest.fixture(scope="module")
def x():
    return mackey_glass(200, seed=0)[0][:T]


def slot(params, k):
    return {n: v[k:k + 1] for n, v in params.items()}


def same(a, b):
    return set(a) == set(b) and all(np.array_equal(a[n], b[n]) for n in a)


def flatten(params, names, k=0):
    return np.concatenate([params[n][k].ravel() for n in names])


def unflatten(vector, like, names):
    out, offset = {}, 0
    for n in names:
        shape = like[n].shape[1:]
        size = int(np.prod(shape))
        out[n] = vector[offset:offset + size].reshape((1, *shape))
        offset += size
    assert offset == vector.size
    return out


def objective(compiled, x, like):
    """(cost, flat gradient) of a K=1 model as a function of its flattened parameters."""
    def f(vector):
        cost, _, grads = compiled.loss_and_grad(x, unflatten(vector, like, compiled.names))
        return float(cost[0]), flatten(grads, compiled.names)
    return f


# --- SGD -------------------------------------------------------------------------------------

def test_sgd_is_plain_full_batch_gradient_descent(compiled_model, x):
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    params, curve, diverged = sgd(compiled, x, start, SEEDS, lr=0.3, epochs=7, log_every=3)
    p, costs = start, []
    for _ in range(7):
        cost, _, grads = compiled.loss_and_grad(x, p)
        costs.append(cost)
        p = {n: p[n] - 0.3 * grads[n] for n in p}
    assert same(params, p)
    assert not diverged.any() and diverged.shape == (3,)
    # rows every log_every epochs and at the last, one per seed, with the cost before that epoch's update
    assert [(r["epoch"], r["seed"]) for r in curve] == [(e, s) for e in (0, 3, 6) for s in SEEDS]
    for r in curve:
        assert r["cost"] == costs[r["epoch"]][SEEDS.index(r["seed"])]
    assert same(start, init_params(SPEC, SEEDS))  # the caller's parameters are not modified


def test_sgd_monitor_sees_the_updated_parameters(compiled_model, x):
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    seen = []

    def monitor(params):
        seen.append({n: v.copy() for n, v in params.items()})
        return {"w_hh_sum": params["w_hh"].sum(axis=(1, 2)), "const": np.arange(3.0)}

    params, curve, _ = sgd(compiled, x, start, SEEDS, lr=0.3, epochs=4, log_every=2, monitor=monitor)
    assert len(seen) == 3  # epochs 0, 2 and the last (3)
    _, _, g0 = compiled.loss_and_grad(x, start)
    assert same(seen[0], {n: start[n] - 0.3 * g0[n] for n in start})
    assert same(seen[-1], params)
    last = [r for r in curve if r["epoch"] == 3]
    assert [r["const"] for r in last] == [0.0, 1.0, 2.0]
    assert [r["w_hh_sum"] for r in last] == pytest.approx(params["w_hh"].sum(axis=(1, 2)).tolist(), rel=1e-15)


def test_sgd_with_weight_noise_is_seeded_and_per_model(compiled_model, x):
    spec = Spec(hidden=4, weight_noise=0.05)
    start = init_params(spec, SEEDS)
    a, _, _ = sgd(compiled_model(spec, 3, T), x, start, SEEDS, lr=0.3, epochs=5)
    b, _, _ = sgd(compiled_model(spec, 3, T), x, start, SEEDS, lr=0.3, epochs=5)
    assert same(a, b)
    quiet, _, _ = sgd(compiled_model(Spec(hidden=4), 3, T), x, start, SEEDS, lr=0.3, epochs=5)
    assert not np.allclose(a["w_hh"], quiet["w_hh"], rtol=1e-6, atol=0)  # the noise is used
    for k, seed in enumerate(SEEDS):
        alone, _, _ = sgd(compiled_model(spec, 1, T), x, slot(start, k), [seed], lr=0.3, epochs=5)
        for n in a:
            np.testing.assert_allclose(a[n][k], alone[n][0], rtol=1e-10, atol=1e-14)


def test_a_diverging_model_is_frozen_and_the_others_train_as_if_alone(compiled_model, x):
    seeds = [0, 2, 1]
    start = init_params(DIVERGING, seeds)
    params, curve, diverged = sgd(compiled_model(DIVERGING, 3, T), x, start, seeds, lr=0.3, epochs=30)
    assert diverged.tolist() == [False, True, False]
    for n in params:
        assert np.all(np.isfinite(params[n][1])), n  # frozen at finite values
    last = {r["seed"]: r["cost"] for r in curve if r["epoch"] == 29}
    assert not np.isfinite(last[2]) and np.isfinite(last[0]) and np.isfinite(last[1])
    for k in (0, 2):
        alone, _, div = sgd(compiled_model(DIVERGING, 1, T), x, slot(start, k), [seeds[k]], lr=0.3, epochs=30)
        assert not div.any()
        for n in params:
            np.testing.assert_allclose(params[n][k], alone[n][0], rtol=1e-10, atol=1e-14)
    # frozen means frozen: more epochs leave the diverged model where it stopped
    longer, _, diverged40 = sgd(compiled_model(DIVERGING, 3, T), x, start, seeds, lr=0.3, epochs=40)
    assert diverged40[1]
    assert all(np.array_equal(longer[n][1], params[n][1]) for n in params)


def test_run_variant_reports_a_diverged_seed_without_raising():
    series = mackey_glass(200, seed=0)[0]
    settings = {**DIVERGING.to_dict(), "lr": 0.3, "epochs": 30}
    out = run_variant(series, settings, seeds=[0, 2], optimizers=["sgd"], train=T, validation=40, horizon=50,
                      log_every=10)
    status = {r["seed"]: r["status"] for r in out["rows"]}
    assert status[2] == "diverged" and status[0] in ("ok", "unstable")
    bad = next(r for r in out["rows"] if r["seed"] == 2)
    assert np.isnan(bad["val_mse"]) and np.isnan(bad["nrmse_1"])
    good = next(r for r in out["rows"] if r["seed"] == 0)
    assert np.isfinite(good["val_mse"])


# --- BFGS ------------------------------------------------------------------------------------

def test_bfgs_gradient_agrees_with_the_objective(compiled_model, x):
    compiled = compiled_model(SPEC, 1, T)
    rng = np.random.default_rng(0)
    like = init_params(SPEC, [0])
    f = objective(compiled, x, like)
    for _ in range(3):
        v = rng.normal(0.0, 0.3, flatten(like, compiled.names).size)
        grad_norm = np.linalg.norm(f(v)[1])
        assert grad_norm > 1e-3
        assert check_grad(lambda u: f(u)[0], lambda u: f(u)[1], v) < 1e-5 * grad_norm


@pytest.mark.parametrize("gtol", [None, 1e-3])
def test_bfgs_returns_scipys_optimum(compiled_model, x, gtol):
    compiled = compiled_model(SPEC, 1, T)
    start = init_params(SPEC, [3])
    extra = {} if gtol is None else {"gtol": gtol}
    final, infos, diverged = bfgs(compiled, x, start, [3], maxiter=60, **extra)
    f = objective(compiled, x, start)
    res = minimize(f, flatten(start, compiled.names), jac=True, method="BFGS", options={"maxiter": 60, **extra})
    assert np.array_equal(flatten(final, compiled.names), res.x)
    assert not diverged.any()
    info = infos[0]
    assert info["cost"] == res.fun == compiled.loss_and_grad(x, final)[0][0]
    assert info["iterations"] == res.nit and info["evaluations"] == res.nfev and info["message"] == res.message
    assert len(info["curve"]) == res.nit and info["curve"][-1] == res.fun
    assert res.fun < compiled.loss_and_grad(x, start)[0][0]
    assert same(start, init_params(SPEC, [3]))  # the caller's parameters are not modified


def test_lockstep_bfgs_follows_each_models_own_path_exactly(compiled_model, x):
    """Each slot of a stacked run is exactly a scipy BFGS on that slot of the same compiled function."""
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    final, infos, _ = bfgs(compiled, x, start, SEEDS, maxiter=80)
    for k in range(3):
        def f(vector):
            q = {n: v.copy() for n, v in start.items()}
            for n, v in unflatten(vector, start, compiled.names).items():
                q[n][k] = v[0]
            cost, _, grads = compiled.loss_and_grad(x, q)
            return float(cost[k]), flatten(grads, compiled.names, k)
        res = minimize(f, flatten(start, compiled.names, k), jac=True, method="BFGS", options={"maxiter": 80})
        assert np.array_equal(flatten(final, compiled.names, k), res.x), k
        assert infos[k]["cost"] == res.fun and infos[k]["evaluations"] == res.nfev


def test_stacked_bfgs_equals_each_seed_alone(compiled_model, x):
    start = init_params(SPEC, SEEDS)
    final, infos, _ = bfgs(compiled_model(SPEC, 3, T), x, start, SEEDS, maxiter=20)
    for k, seed in enumerate(SEEDS):
        alone, info1, _ = bfgs(compiled_model(SPEC, 1, T), x, slot(start, k), [seed], maxiter=20)
        for n in final:
            np.testing.assert_allclose(final[n][k], alone[n][0], rtol=1e-7, atol=1e-10)
        assert infos[k]["cost"] == pytest.approx(info1[0]["cost"], rel=1e-10)


@pytest.mark.parametrize("backend", ["c", "jax"])
def test_long_stacked_bfgs_equals_each_seed_alone(compiled_model, x, backend):
    """A seed's BFGS result must not depend on how many seeds share the compiled graph.

    Needs every slot's cost to be exactly the single model's: BFGS's line search amplifies a
    one-ulp difference in the cost to percent-level differences in the weights after ~100 iterations.
    """
    start = init_params(SPEC, SEEDS)
    final, _, _ = bfgs(compiled_model(SPEC, 3, T, backend=backend), x, start, SEEDS, maxiter=200)
    for k, seed in enumerate(SEEDS):
        alone, _, _ = bfgs(compiled_model(SPEC, 1, T, backend=backend), x, slot(start, k), [seed], maxiter=200)
        for n in final:
            np.testing.assert_allclose(final[n][k], alone[n][0], rtol=1e-6, atol=1e-9, err_msg=f"seed {seed} {n}")


def test_bfgs_skip_leaves_a_model_untouched(compiled_model, x):
    start = init_params(SPEC, SEEDS)
    final, infos, diverged = bfgs(compiled_model(SPEC, 3, T), x, start, SEEDS, maxiter=30,
                                  skip=[False, True, False])
    assert all(np.array_equal(final[n][1], start[n][1]) for n in start)
    assert infos[1]["message"] == "not run" and infos[1]["iterations"] == 0
    assert diverged.tolist() == [False, True, False]  # a skipped model stays flagged
    for k in (0, 2):
        assert not all(np.array_equal(final[n][k], start[n][k]) for n in start)
        assert infos[k]["iterations"] > 0


# --- train_all -------------------------------------------------------------------------------

def test_train_all_sgd_then_bfgs_starts_from_the_sgd_result(compiled_model, x):
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    out = train_all(compiled, x, SEEDS, ["sgd", "bfgs", "sgd+bfgs"], lr=0.3, epochs=15, bfgs_maxiter=25)
    assert list(out) == ["sgd", "bfgs", "sgd+bfgs"]
    sgd_params, sgd_curve, _ = sgd(compiled, x, start, SEEDS, lr=0.3, epochs=15)
    assert same(out["sgd"]["params"], sgd_params)
    assert out["sgd"]["curve"] == sgd_curve
    assert same(out["bfgs"]["params"], bfgs(compiled, x, start, SEEDS, 25)[0])
    assert same(out["sgd+bfgs"]["params"], bfgs(compiled, x, sgd_params, SEEDS, 25)[0])
    assert out["sgd+bfgs"]["curve"] == sgd_curve
    assert not same(out["sgd+bfgs"]["params"], out["bfgs"]["params"])
    only = train_all(compiled, x, SEEDS, ["sgd+bfgs"], lr=0.3, epochs=15, bfgs_maxiter=25)
    assert list(only) == ["sgd+bfgs"]
    assert same(only["sgd+bfgs"]["params"], out["sgd+bfgs"]["params"])


def test_train_all_sgd_then_bfgs_skips_models_that_diverged_in_sgd(compiled_model, x):
    seeds = [0, 2, 1]
    compiled = compiled_model(DIVERGING, 3, T)
    out = train_all(compiled, x, seeds, ["sgd+bfgs"], lr=0.3, epochs=30, bfgs_maxiter=20)
    run = out["sgd+bfgs"]
    assert run["diverged"].tolist() == [False, True, False]
    sgd_params, _, _ = sgd(compiled, x, init_params(DIVERGING, seeds), seeds, lr=0.3, epochs=30)
    assert all(np.array_equal(run["params"][n][1], sgd_params[n][1]) for n in sgd_params)
    assert run["bfgs"][1]["message"] == "not run"


# --- the tutorial, reproduced ----------------------------------------------------------------

def test_tutorial_baseline_reaches_the_tutorials_validation_error():
    series = mackey_glass(2500, seed=0)[0]
    out = run_variant(series, {}, seeds=[0, 1, 2], optimizers=["sgd"], train=1500, validation=500)
    rows = out["rows"]
    assert [r["seed"] for r in rows] == [0, 1, 2] and all(r["status"] == "ok" for r in rows)
    val = np.median([r["val_mse"] for r in rows])
    assert 4e-4 <= val <= 2e-3, val
    assert out["continuation"]["sgd"].shape == (1000, 3) and out["y"]["sgd"].shape == (2500, 3)
    epochs = sorted({r["epoch"] for r in out["curves"]})
    assert epochs[0] == 0 and epochs[-1] == 1000


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lr", "bfgs_gtol"])
@pytest.mark.parametrize("value", [0, -0.1, float("nan"), float("inf")])
def test_lr_and_gtol_must_be_positive_and_finite(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be a finite number > 0"):
        check_settings(**{name: value})


@pytest.mark.parametrize("name", ["epochs", "bfgs_maxiter", "log_every"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_counts_must_be_positive_integers(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be an integer >= 1"):
        check_settings(**{name: value})


def test_sgd_and_bfgs_check_their_settings(compiled_model, x):
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0"):
        sgd(compiled, x, start, SEEDS, lr=0.0)
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1"):
        sgd(compiled, x, start, SEEDS, epochs=0)
    with pytest.raises(ValueError, match=r"bfgs_maxiter must be an integer >= 1"):
        bfgs(compiled, x, start, SEEDS, maxiter=0)


@pytest.mark.parametrize("optimizers", [["adam"], ["sgd", "lbfgs"], []])
def test_train_all_rejects_unknown_optimizers_naming_the_choices(compiled_model, x, optimizers):
    with pytest.raises(ValueError, match=r"optimizers must be a non-empty list from sgd, bfgs, sgd\+bfgs"):
        train_all(compiled_model(SPEC, 3, T), x, SEEDS, optimizers)


SERIES = np.linspace(-0.5, 0.5, 300)[:, None]


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizers": ["adam"]}, r"optimizers must be a non-empty list from sgd, bfgs, sgd\+bfgs; got \['adam'\]"),
    ({"optimizers": []}, r"optimizers must be a non-empty list from sgd, bfgs, sgd\+bfgs"),
    ({"backend": "tpu"}, r"backend must be one of c, jax, numba; got 'tpu'"),
    ({"train": 250, "validation": 100}, r"train \+ validation \(250 \+ 100\) must be <= the series length 300"),
    ({"train": 100, "validation": 50, "horizon": 201}, r"horizon \(201\) must be <= series length - train"),
    ({"settings": {"nonlinearity": "elu"}}, r"nonlinearity must be one of tanh, sigmoid, relu, linear"),
    ({"settings": {"hidden": 0}}, r"hidden must be an integer >= 1"),
    ({"settings": {"l2": -1e-4}}, r"l2 must be a finite number >= 0"),
    ({"settings": {"lr": 0.0}}, r"lr must be a finite number > 0"),
    ({"settings": {"epochs": 0}}, r"epochs must be an integer >= 1"),
    ({"settings": {"bfgs_maxiter": 0}}, r"bfgs_maxiter must be an integer >= 1"),
    ({"settings": {"bfgs_gtol": -1.0}}, r"bfgs_gtol must be a finite number > 0"),
    ({"seeds": [1, 1]}, r"seeds must be a non-empty list of distinct integers"),
    ({"seeds": []}, r"seeds must be a non-empty list of distinct integers"),
])
def test_run_variant_rejects_bad_input_before_compiling(kwargs, message):
    args = {"settings": {}, "train": 100, "validation": 50, "horizon": 100, **kwargs}
    settings = args.pop("settings")
    with pytest.raises(ValueError, match=message):
        run_variant(SERIES, settings, **args)


@pytest.mark.parametrize("length, train, validation, horizon, name", [
    (100, 80, 30, 10, r"train \+ validation"),
    (100, 60, 40, 41, r"horizon"),
    (100, 1, 10, 10, r"train must be >= 2"),
    (100, 0, 10, 10, r"train must be an integer >= 1"),
    (100, 50, 0, 10, r"validation must be an integer >= 1"),
    (100, 50, 10, 0, r"horizon must be an integer >= 1"),
    (100, 50, 10.5, 10, r"validation must be an integer >= 1"),
])
def test_check_segments_names_the_segment_that_does_not_fit(length, train, validation, horizon, name):
    with pytest.raises(ValueError, match=name):
        check_segments(length, train, validation, horizon)


def test_check_segments_accepts_the_tutorials_split():
    check_segments(2500, 1500, 500, 1000)
    check_segments(2000, 1500, 500, 500)
