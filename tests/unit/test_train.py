"""rnn.train and rnn.experiment: SGD, divergence handling, train_all with every optimizer, run_variant,
the tutorial's result, and the checks of training settings and segments (rnn.quasi_newton has its own tests)."""

import numpy as np
import pytest

from rnn import quasi_newton, train
from rnn.data import mackey_glass
from rnn.experiment import check_segments, run_variant
from rnn.compiled import Compiled
from rnn.model import Spec, init_params
from rnn.train import check_settings, sgd, train_all

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


def quasi_newton_from(compiled, x, params, seeds, maxiter, method="bfgs", **kwargs):
    """``rnn.quasi_newton.minimize`` on the compiled training cost, as train_all calls it."""
    return quasi_newton.minimize(lambda p: compiled.loss_and_grad(x, p)[::2], params, seeds, method, maxiter,
                                 **kwargs)


# --- SGD -------------------------------------------------------------------------------------

def close(a, b, rtol=1e-12):
    return set(a) == set(b) and all(np.allclose(a[n], b[n], rtol=rtol, atol=0) for n in a)


def test_sgd_is_plain_full_batch_gradient_descent(compiled_model, x):
    """The same epochs as a NumPy loop over loss_and_grad, to rounding: the compiled loop may fuse
    the update into one multiply-add (one rounding instead of two)."""
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    params, curve, diverged = sgd(compiled, x, start, SEEDS, lr=0.3, epochs=7, log_every=3)
    p, costs = start, []
    for _ in range(7):
        cost, _, grads = compiled.loss_and_grad(x, p)
        costs.append(cost)
        p = {n: p[n] - 0.3 * grads[n] for n in p}
    assert close(params, p) and not same(params, start)
    assert not diverged.any() and diverged.shape == (3,)
    # rows every log_every epochs and at the last, one per seed, with the cost before that epoch's update
    assert [(r["epoch"], r["seed"]) for r in curve] == [(e, s) for e in (0, 3, 6) for s in SEEDS]
    for r in curve:
        assert r["cost"] == pytest.approx(costs[r["epoch"]][SEEDS.index(r["seed"])], rel=1e-12)
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
    assert close(seen[0], {n: start[n] - 0.3 * g0[n] for n in start})
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

@pytest.mark.parametrize("backend", ["jax", "numba"])
def test_long_stacked_bfgs_equals_each_seed_alone(compiled_model, x, backend):
    """A seed's BFGS result must not depend on how many seeds share the compiled graph.

    Needs every slot's cost to be exactly the single model's: BFGS's line search amplifies a
    one-ulp difference in the cost to percent-level differences in the weights after ~100 iterations.
    (Not on C: there PyTensor computes one model's recurrent product with BLAS's gemv and several
    models' with a batched product, which round differently in the last bit.)
    """
    start = init_params(SPEC, SEEDS)
    final, _, _ = quasi_newton_from(compiled_model(SPEC, 3, T, backend=backend), x, start, SEEDS, maxiter=200)
    for k, seed in enumerate(SEEDS):
        alone, _, _ = quasi_newton_from(compiled_model(SPEC, 1, T, backend=backend), x, slot(start, k), [seed],
                                        maxiter=200)
        for n in final:
            np.testing.assert_allclose(final[n][k], alone[n][0], rtol=1e-6, atol=1e-9, err_msg=f"seed {seed} {n}")


# --- train_all -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_train_all_runs_a_quasi_newton_method_alone_and_after_sgd(compiled_model, x, method):
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    after = f"sgd+{method}"
    out = train_all(compiled, x, SEEDS, ["sgd", method, after], lr=0.3, epochs=15, bfgs_maxiter=25, bfgs_gtol=1e-7)
    assert list(out) == ["sgd", method, after]
    sgd_params, sgd_curve, _ = sgd(compiled, x, start, SEEDS, lr=0.3, epochs=15)
    assert same(out["sgd"]["params"], sgd_params)
    assert out["sgd"]["curve"] == sgd_curve
    alone, infos, _ = quasi_newton_from(compiled, x, start, SEEDS, 25, method, gtol=1e-7)
    assert same(out[method]["params"], alone) and out[method]["bfgs"] == infos
    assert same(out[after]["params"], quasi_newton_from(compiled, x, sgd_params, SEEDS, 25, method, gtol=1e-7)[0])
    assert out[after]["curve"] == sgd_curve
    assert out[after]["seconds"] > out["sgd"]["seconds"]
    assert not same(out[after]["params"], out[method]["params"])
    only = train_all(compiled, x, SEEDS, [after], lr=0.3, epochs=15, bfgs_maxiter=25, bfgs_gtol=1e-7)
    assert list(only) == [after]
    assert same(only[after]["params"], out[after]["params"])


def test_quasi_newton_with_weight_noise_minimises_the_loss_averaged_over_fixed_draws(compiled_model, x):
    """BFGS needs a deterministic objective: with weight noise it is the mean loss over WEIGHT_NOISE_DRAWS
    fixed draws per model (stream 1 of each seed), the same at every evaluation; not the clean loss."""
    from rnn import quasi_newton
    from rnn.train import WEIGHT_NOISE_DRAWS, fixed_noise

    spec = Spec(hidden=4, weight_noise=0.05, input_noise=0.01)
    compiled, start = compiled_model(spec, 2, T), init_params(spec, [0, 1])
    draws = fixed_noise(spec, [0, 1], T)
    assert len(draws) == WEIGHT_NOISE_DRAWS > 1
    assert all(np.array_equal(d["x"], draws[0]["x"]) for d in draws)  # one input-noise draw
    assert not np.array_equal(draws[0]["w_hh"], draws[1]["w_hh"])
    assert np.array_equal(draws[2]["w_hh"], fixed_noise(spec, [0, 1], T)[2]["w_hh"])  # fixed: the same again

    def averaged(p):
        parts = [compiled.loss_and_grad(x, p, d)[::2] for d in draws]
        return np.mean([c for c, _ in parts], axis=0), {n: np.mean([g[n] for _, g in parts], axis=0) for n in p}

    want, _, _ = quasi_newton.minimize(averaged, start, [0, 1], "bfgs", 10, 1e-9)
    got = train_all(compiled, x, [0, 1], ["bfgs"], bfgs_maxiter=10, bfgs_gtol=1e-9)["bfgs"]["params"]
    assert same(got, want)
    clean = train_all(compiled_model(Spec(hidden=4, input_noise=0.01), 2, T), x, [0, 1], ["bfgs"], bfgs_maxiter=10,
                      bfgs_gtol=1e-9)["bfgs"]["params"]
    assert not same(got, clean)


def test_train_all_sgd_then_quasi_newton_skips_models_that_diverged_in_sgd(compiled_model, x):
    seeds = [0, 2, 1]
    compiled = compiled_model(DIVERGING, 3, T)
    out = train_all(compiled, x, seeds, ["sgd+bfgs", "sgd+lbfgs"], lr=0.3, epochs=30, bfgs_maxiter=20)
    sgd_params, _, _ = sgd(compiled, x, init_params(DIVERGING, seeds), seeds, lr=0.3, epochs=30)
    for run in out.values():
        assert run["diverged"].tolist() == [False, True, False]
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
    with pytest.raises(ValueError, match=rf"{name}: .*(minimum of 0|finite number|not of type)"):
        check_settings(**{name: value})


@pytest.mark.parametrize("name", ["epochs", "bfgs_maxiter", "log_every"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_counts_must_be_positive_integers(name, value):
    with pytest.raises(ValueError, match=rf"{name}(: .*(minimum of 1|not of type)| must be an integer >= 1)"):
        check_settings(**{name: value})


def test_sgd_and_train_all_check_their_settings(compiled_model, x):
    compiled = compiled_model(SPEC, 3, T)
    start = init_params(SPEC, SEEDS)
    with pytest.raises(ValueError, match=r"lr: .*(minimum of 0|finite number|not of type)"):
        sgd(compiled, x, start, SEEDS, lr=0.0)
    with pytest.raises(ValueError, match=r"epochs: .*(minimum of 1|not of type)"):
        sgd(compiled, x, start, SEEDS, epochs=0)
    with pytest.raises(ValueError, match=r"bfgs_maxiter: .*(minimum of 1|not of type)"):
        train_all(compiled, x, SEEDS, ["lbfgs"], bfgs_maxiter=0)


CHOICES = r"optimizers must be a non-empty list from sgd, bfgs, sgd\+bfgs, lbfgs, sgd\+lbfgs, ridge, ridge\+bfgs, ridge\+lbfgs"


@pytest.mark.parametrize("optimizers", [["adam"], ["sgd", "l-bfgs"], ["lbfgs+sgd"], []])
def test_train_all_rejects_unknown_optimizers_naming_the_choices(compiled_model, x, optimizers):
    with pytest.raises(ValueError, match=CHOICES):
        train_all(compiled_model(SPEC, 3, T), x, SEEDS, optimizers)


SERIES = np.linspace(-0.5, 0.5, 300)[:, None]


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizers": ["adam"]}, CHOICES + r"; got \['adam'\]"),
    ({"optimizers": []}, CHOICES),
    ({"backend": "tpu"}, r"backend must be one of c, jax, numba; got 'tpu'"),
    ({"train": 250, "validation": 100}, r"train \+ validation \(250 \+ 100\) must be <= the series length 300"),
    ({"train": 100, "validation": 50, "horizon": 201}, r"horizon \(201\) must be <= series length - train"),
    ({"settings": {"nonlinearity": "elu"}}, r"nonlinearity: .*is not one of \['tanh', 'sigmoid', 'relu', 'linear'\]"),
    ({"settings": {"hidden": 0}}, r"hidden: .*(minimum of 1|not of type)"),
    ({"settings": {"l2": -1e-4}}, r"l2: .*minimum of 0"),
    ({"settings": {"lr": 0.0}}, r"lr: .*(minimum of 0|finite number|not of type)"),
    ({"settings": {"epochs": 0}}, r"epochs: .*(minimum of 1|not of type)"),
    ({"settings": {"bfgs_maxiter": 0}}, r"bfgs_maxiter: .*(minimum of 1|not of type)"),
    ({"settings": {"bfgs_gtol": -1.0}}, r"bfgs_gtol: .*(minimum of 0|finite number|not of type)"),
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
