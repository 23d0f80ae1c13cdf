"""rnn.quasi_newton: BFGS follows scipy's minimize(method="BFGS"), L-BFGS-B, the lock-step batching
over stacked models, skip and divergence, and the refusal of bad arguments."""

import threading

import numpy as np
import pytest
from scipy.optimize import BFGS, check_grad, minimize, rosen, rosen_der

from rnn import quasi_newton
from rnn.data import mackey_glass
from rnn.model import Spec, init_params

T = 500  # a shorter training segment than the tutorial's 1500: same network, a third of the time
SPEC = Spec()  # the baseline: hidden 15 (271 parameters), tanh, l2 1e-4
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def x():
    return mackey_glass(2500, seed=0)[0][:T]


@pytest.fixture(scope="module")
def start():
    return init_params(SPEC, SEEDS)


def stacked(compiled, x):
    """The objective over stacked parameters, as rnn.train.train_all builds it."""
    return lambda params: compiled.loss_and_grad(x, params)[::2]


def flatten(params, k=0):
    return np.concatenate([params[n][k].ravel() for n in SPEC.param_shapes])


def objective(compiled, x, k=0, others=None):
    """(cost, flat gradient) of slot k as a function of its flattened parameters; the other slots of
    a K > 1 ``compiled`` are held at ``others``."""
    def f(vector):
        params, offset = {n: np.array(v) for n, v in (others or {}).items()}, 0
        for n, shape in SPEC.param_shapes.items():
            size = int(np.prod(shape))
            params.setdefault(n, np.zeros((1, *shape)))[k] = vector[offset:offset + size].reshape(shape)
            offset += size
        cost, _, grads = compiled.loss_and_grad(x, params)
        return float(cost[k]), flatten(grads, k)
    return f


def slot(params, k):
    return {n: v[k:k + 1] for n, v in params.items()}


def same(a, b):
    return set(a) == set(b) and all(np.array_equal(a[n], b[n]) for n in a)


def iterates(method, f, x0, maxiter, gtol):
    """(result, [x after each iteration]) of scipy's ``minimize`` or one of ``rnn.quasi_newton``'s."""
    xs = []

    def record(intermediate_result):
        xs.append(intermediate_result.x.copy())
    if method == "scipy":
        res = minimize(f, x0, jac=True, method="BFGS", callback=record, options={"maxiter": maxiter, "gtol": gtol})
    else:
        res = getattr(quasi_newton, method)(f, x0, maxiter, gtol, record)
    return res, xs


def relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# --- BFGS against scipy's minimize(method="BFGS") ---------------------------------------------

def test_the_objective_bfgs_sees_agrees_with_its_gradient(compiled_model, x):
    f = objective(compiled_model(SPEC, 1, T), x)
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.normal(0.0, 0.3, flatten(init_params(SPEC, [0])).size)
        grad_norm = np.linalg.norm(f(v)[1])
        assert grad_norm > 1e-3
        assert check_grad(lambda u: f(u)[0], lambda u: f(u)[1], v) < 1e-5 * grad_norm


def test_bfgs_follows_scipys_bfgs_on_rosenbrock():
    def f(v):
        return rosen(v), rosen_der(v)
    x0 = np.random.default_rng(0).normal(size=20)
    ours, xs = iterates("bfgs", f, x0, 1000, 1e-8)
    theirs, ys = iterates("scipy", f, x0, 1000, 1e-8)
    assert len(xs) == ours.nit and ours.message == theirs.message and ours.success
    # rounding of the O(n²) update against minimize's O(n³) one grows along the path: measured 3.6e-13
    # at iteration 10, 7.7e-12 at 20; by the end it can cost or save an iteration or two, and how many
    # depends on the CPU (the same on an Intel Xeon, 147 against 145 on an AMD EPYC)
    assert abs(ours.nit - theirs.nit) <= 3
    for i in range(20):
        assert relative(xs[i], ys[i]) < 1e-10, i
    assert ours.fun < 1e-18 and theirs.fun < 1e-18


def test_bfgs_stops_on_precision_loss_where_scipys_bfgs_does():
    def f(v):
        return rosen(v) + 1.0, rosen_der(v)  # a minimum of 1: no gradient gets below 1e-30
    x0 = np.random.default_rng(0).normal(size=5)
    ours, _ = iterates("bfgs", f, x0, 1000, 1e-30)
    theirs, _ = iterates("scipy", f, x0, 1000, 1e-30)
    for key in ("nit", "nfev", "njev", "status", "message"):
        assert ours[key] == theirs[key], key
    assert ours.status == 2 and not ours.success


def test_the_in_place_update_is_scipys_bfgs_update_without_its_copies():
    rng = np.random.default_rng(0)
    ours = quasi_newton._InPlaceBFGS(exception_strategy="skip_update", min_curvature=0.0, init_scale=1.0)
    theirs = BFGS(exception_strategy="skip_update", min_curvature=0.0, init_scale=1.0)
    ours.initialize(40, "inv_hess")
    theirs.initialize(40, "inv_hess")
    for i in range(6):
        s = rng.normal(size=40)
        y = 3 * s + rng.normal(size=40)
        ours.update(s, y)
        theirs.update(s, y)
        if i == 0:
            buffer = ours.H  # the first update copies the identity into BLAS's (Fortran) layout
        assert ours.H is buffer, i
        assert np.array_equal(ours.get_matrix(), theirs.get_matrix()), i


@pytest.mark.parametrize("k", range(3))
def test_bfgs_first_iterates_follow_scipys_bfgs_at_the_baselines_size(compiled_model, x, start, k):
    """Same start, same first ten iterates (measured within 3e-13 relative), same counts and message."""
    f = objective(compiled_model(SPEC, 1, T), x)
    ours, xs = iterates("bfgs", f, flatten(start, k), 10, 1e-8)
    theirs, ys = iterates("scipy", f, flatten(start, k), 10, 1e-8)
    assert len(xs) == len(ys) == 10
    assert relative(xs[0], ys[0]) == 0  # the first step is -gradient times the same step length
    for i in range(10):
        assert relative(xs[i], ys[i]) < 1e-8, i
    for key in ("nit", "nfev", "njev", "status", "message"):
        assert ours[key] == theirs[key], key
    assert ours.fun == pytest.approx(theirs.fun, rel=1e-12)


def test_stacked_bfgs_ends_where_scipys_bfgs_ends_for_each_seed(compiled_model, x, start):
    """100 iterations over 3 stacked seeds against scipy alone per seed: final costs measured within
    1.9e-8 relative at T=500 (within 8.3e-6 at T=1500, where one seed's path drifts further)."""
    final, infos, diverged = quasi_newton.minimize(stacked(compiled_model(SPEC, 3, T), x), start, SEEDS,
                                                   maxiter=100, gtol=1e-8)
    f = objective(compiled_model(SPEC, 1, T), x)
    assert not diverged.any()
    for k in range(3):
        res = minimize(f, flatten(start, k), jac=True, method="BFGS", options={"maxiter": 100, "gtol": 1e-8})
        assert infos[k]["cost"] == pytest.approx(res.fun, rel=1e-5)
        assert infos[k]["iterations"] == res.nit == 100 and infos[k]["message"] == res.message
        assert infos[k]["cost"] == f(flatten(final, k))[0]  # the final point is written back
        assert len(infos[k]["curve"]) == 100 and infos[k]["curve"][-1] == infos[k]["cost"]
        assert np.all(np.diff(infos[k]["curve"]) <= 0)
    assert same(start, init_params(SPEC, SEEDS))  # the caller's parameters are not modified


@pytest.mark.parametrize("method", quasi_newton.METHODS)
def test_each_stacked_model_follows_its_own_optimizer_exactly(compiled_model, x, start, method):
    """Slot k of a stacked run is, bit for bit, ``method``'s optimizer run alone on slot k of the same function."""
    compiled = compiled_model(SPEC, 3, T)
    final, infos, _ = quasi_newton.minimize(stacked(compiled, x), start, SEEDS, method, maxiter=60, gtol=1e-8)
    for k in range(3):
        res = getattr(quasi_newton, method)(objective(compiled, x, k, start), flatten(start, k), 60, 1e-8)
        assert np.array_equal(flatten(final, k), res.x), k
        assert (infos[k]["cost"], infos[k]["iterations"], infos[k]["evaluations"], infos[k]["message"]) == \
            (res.fun, res.nit, res.nfev, res.message)


@pytest.mark.parametrize("method", quasi_newton.METHODS)
def test_stacked_equals_each_seed_alone(compiled_model, x, start, method):
    """K=3 against K=1 per seed. Not bit for bit: the compiled K=1 and K=3 gradients differ in the
    last ulp (their costs do not), which line searches amplify: after 30 iterations the parameters
    were measured within 1.6e-9 relative, after 60 within 3e-5 and after 100 L-BFGS-B's 30% apart."""
    final, infos, _ = quasi_newton.minimize(stacked(compiled_model(SPEC, 3, T), x), start, SEEDS, method,
                                            maxiter=30, gtol=1e-8)
    for k, seed in enumerate(SEEDS):
        alone, info, _ = quasi_newton.minimize(stacked(compiled_model(SPEC, 1, T), x), slot(start, k), [seed],
                                               method, maxiter=30, gtol=1e-8)
        np.testing.assert_allclose(flatten(final, k), flatten(alone), rtol=1e-7, atol=1e-10, err_msg=str(seed))
        assert infos[k]["cost"] == pytest.approx(info[0]["cost"], rel=1e-9)
        assert infos[k]["evaluations"] == info[0]["evaluations"]


def test_lbfgs_lowers_the_cost_and_stops_on_maxiter_not_on_a_small_decrease(compiled_model, x, start):
    fun = stacked(compiled_model(SPEC, 3, T), x)
    final, infos, diverged = quasi_newton.minimize(fun, start, SEEDS, "lbfgs", maxiter=150, gtol=1e-8)
    assert not diverged.any()
    initial, reached = fun(start)[0], fun(final)[0]
    assert np.all(reached < 0.5 * initial)
    for k, info in enumerate(infos):
        assert info["cost"] == reached[k] and len(info["curve"]) == info["iterations"] == 150
        assert info["message"].startswith("STOP: TOTAL NO. OF ITERATIONS")  # scipy's ftol would stop at ~100


# --- skip, divergence, failures: a cheap synthetic objective -----------------------------------

CENTRES = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0], [-1.0, 1.0, 2.0]])


def quadratic(bad=()):
    """K=3 models, cost_k = sum (1 + i)(p_i - c_ki)^2; models in ``bad`` return NaN everywhere."""
    weights = np.arange(1.0, 4.0)

    def fun(params):
        d = params["p"] - CENTRES
        cost, grads = (weights * d**2).sum(axis=1), 2 * weights * d
        for k in bad:
            cost[k], grads[k] = np.nan, np.nan
        return cost, {"p": grads}
    return fun


ZERO = {"p": np.zeros((3, 3))}


@pytest.mark.parametrize("method", quasi_newton.METHODS)
def test_both_methods_find_the_minimum_of_each_model(method):
    final, infos, diverged = quasi_newton.minimize(quadratic(), ZERO, SEEDS, method, maxiter=50, gtol=1e-10)
    np.testing.assert_allclose(final["p"], CENTRES, rtol=0, atol=1e-9)
    assert not diverged.any() and all(i["iterations"] < 50 for i in infos)


@pytest.mark.parametrize("method", quasi_newton.METHODS)
def test_skip_leaves_a_model_untouched_and_flagged(method):
    final, infos, diverged = quasi_newton.minimize(quadratic(), ZERO, SEEDS, method, skip=[False, True, False])
    assert np.array_equal(final["p"][1], ZERO["p"][1]) and diverged.tolist() == [False, True, False]
    assert infos[1] == {"iterations": 0, "evaluations": 0, "gradient_evaluations": 0, "message": "not run",
                        "cost": infos[1]["cost"], "curve": []} and np.isnan(infos[1]["cost"])
    alone, _, _ = quasi_newton.minimize(quadratic(), ZERO, SEEDS, method)
    assert np.array_equal(final["p"][[0, 2]], alone["p"][[0, 2]])


@pytest.mark.parametrize("method", quasi_newton.METHODS)
def test_a_non_finite_model_is_put_back_at_its_start_and_the_others_train(method):
    start = {"p": np.ones((3, 3))}
    final, infos, diverged = quasi_newton.minimize(quadratic(bad=[2]), start, SEEDS, method, maxiter=50,
                                                   gtol=1e-10)
    assert diverged.tolist() == [False, False, True]
    assert np.array_equal(final["p"][2], start["p"][2]) and np.isnan(infos[2]["cost"])
    np.testing.assert_allclose(final["p"][:2], CENTRES[:2], rtol=0, atol=1e-9)


def test_a_failing_objective_raises_and_leaves_no_thread_behind():
    calls = []

    def fun(params):
        calls.append(1)
        if len(calls) == 3:
            raise FloatingPointError("boom")
        return quadratic()(params)
    before = threading.active_count()
    with pytest.raises(FloatingPointError, match="boom"):
        quasi_newton.minimize(fun, ZERO, SEEDS)
    assert threading.active_count() == before


# --- bad arguments -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"method": "newton"}, r"method must be one of bfgs, lbfgs; got 'newton'"),
    ({"maxiter": 0}, r"maxiter must be an integer >= 1, got 0"),
    ({"maxiter": 2.5}, r"maxiter must be an integer >= 1, got 2.5"),
    ({"gtol": 0.0}, r"gtol must be a finite number > 0, got 0.0"),
    ({"gtol": float("nan")}, r"gtol must be a finite number > 0, got nan"),
    ({"seeds": [0, 1]}, r"seeds must have one entry per model \(3\), got 2"),
    ({"skip": [True, False]}, r"skip must be None or one flag per model \(3\), got shape \(2,\)"),
    ({"params": {}}, r"params must be a non-empty dict name -> stacked array \(K, ...\) with one K"),
    ({"params": {"p": np.zeros((3, 3)), "q": np.zeros((2, 3))}}, r"params must be a non-empty dict"),
])
def test_bad_arguments_are_refused_before_any_evaluation(kwargs, message):
    calls = []
    args = {"params": ZERO, "seeds": SEEDS, **kwargs}
    with pytest.raises(ValueError, match=message):
        quasi_newton.minimize(lambda p: calls.append(1), **args)
    assert not calls


def test_an_objective_of_the_wrong_shape_is_refused_naming_the_contract():
    with pytest.raises(ValueError, match=r"fun must return \(cost \(3,\), grads \{name: \(3, ...\)\}\)"):
        quasi_newton.minimize(lambda p: (np.zeros(2), {"p": np.zeros((3, 3))}), ZERO, SEEDS)
