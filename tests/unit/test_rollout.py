"""rnn.rollout: the closed-loop training loss against a NumPy transcription, the one-step loss at
one step, finite differences, pytensor.grad, stacking, input noise, and the horizon schedule."""

import numpy as np
import pytest

from rnn import train
from rnn.data import mackey_glass
from rnn.model import Spec, init_params, penalty
from rnn.rollout import check_rollout, forcing, stride

from numpy_model import np_free_run, np_step, np_teacher_forced, random_params, rel_err, slot

T = 50


@pytest.fixture(scope="module")
def x():
    return mackey_glass(200, seed=0)[0][:T]


def np_rollout_mse(spec, x, q, steps, u=None, every=None):
    """The closed-loop loss of one model, the slow way: every start state (or every ``every``-th,
    by default ``spec.rollout_stride``-th), ``steps`` fed-back predictions."""
    u = x if u is None else u
    hs, ys = np_teacher_forced(spec, u, q)
    errors = []
    for t in range(spec.washout, len(x) - steps, spec.rollout_stride if every is None else every):
        predictions = np.concatenate([[ys[t]], np_free_run(spec, q, ys[t], hs[t], steps - 1)])
        errors.append(predictions - x[t + 1:t + 1 + steps, 0])
    return float(np.mean(np.square(errors)))


CASES = {
    "tanh": Spec(rollout_stride=1, hidden=4, rollout_steps=6, washout=5),
    "tanh_l2_l1": Spec(rollout_stride=1, hidden=4, rollout_steps=3, washout=0, l2=0.01, l1=0.003),
    "relu_skip": Spec(hidden=4, rollout_steps=5, washout=7, nonlinearity="relu", skip=True, rollout_stride=3),
    "sigmoid": Spec(rollout_stride=1, hidden=3, rollout_steps=4, washout=2, nonlinearity="sigmoid"),
    "linear_skip": Spec(rollout_stride=1, hidden=3, rollout_steps=4, washout=2, nonlinearity="linear", skip=True),
    "wide": Spec(hidden=26, rollout_steps=4, washout=3, skip=True, rollout_stride=2),  # the batched-dot product
}


def case(name, K=1):
    spec = CASES[name]
    params = random_params(spec, K, seed=sorted(CASES).index(name), scale=0.5 * min(1.0, np.sqrt(4 / spec.hidden)))
    return spec, params


@pytest.mark.parametrize("name", CASES)
def test_rollout_loss_matches_numpy_transcription(compiled_model, x, name):
    spec, params = case(name, K=2)
    cost, mse, _ = compiled_model(spec, 2, T).loss_and_grad(x, params)
    for k in range(2):
        want = np_rollout_mse(spec, x, slot(params, k), spec.rollout_steps)
        assert mse[k] == pytest.approx(want, rel=1e-12)
        assert cost[k] == pytest.approx(want + penalty(spec, {n: v[k:k + 1] for n, v in params.items()})[0], rel=1e-12)


@pytest.mark.parametrize("skip", [False, True])
def test_rollout_at_one_step_is_the_one_step_loss(compiled_model, x, skip):
    """rollout_steps 1 with washout 0: every start point's only prediction is the one-step prediction."""
    one_step = Spec(hidden=4, skip=skip, l2=0.01)
    params = random_params(one_step, 2, seed=3)
    tutorial = compiled_model(one_step, 2, T).loss_and_grad(x, params)
    rolled = compiled_model(Spec(rollout_stride=1, hidden=4, skip=skip, l2=0.01, rollout_steps=2, washout=0), 2, T)
    closed = rolled.loss_and_grad(x, params, steps=1)
    assert rel_err(closed[1], tutorial[1]) < 1e-13 and rel_err(closed[0], tutorial[0]) < 1e-13
    for n in params:
        assert rel_err(closed[2][n], tutorial[2][n]) < 1e-11, n


def finite_differences(compiled, x, params, eps=1e-6):
    """{name: central finite differences of the first model's loss}, one parameter entry at a time."""
    out = {}
    for n, value in params.items():
        fd = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus, minus = {**params, n: value.copy()}, {**params, n: value.copy()}
            plus[n][i] += eps
            minus[n][i] -= eps
            fd[i] = (compiled.loss_and_grad(x, plus)[0][0] - compiled.loss_and_grad(x, minus)[0][0]) / (2 * eps)
        out[n] = fd
    return out


@pytest.mark.parametrize("name", CASES)
def test_rollout_gradient_matches_central_finite_differences(compiled_model, x, name):
    spec, params = case(name)
    compiled = compiled_model(spec, 1, T)
    _, _, grads = compiled.loss_and_grad(x, params)
    for n, fd in finite_differences(compiled, x, params).items():
        assert np.max(np.abs(fd)) > 1e-5, f"{n}: the test should exercise a non-trivial gradient"
        assert rel_err(grads[n], fd) < 2e-6, f"{n}: by hand {grads[n].ravel()} vs fd {fd.ravel()}"


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "linear_skip", "wide"])
def test_rollout_gradient_by_hand_equals_pytensor_grad(compiled_model, x, name):
    """(Not relu: pytensor.grad through the closed-loop scan disagrees with finite differences there,
    while the hand-written gradient agrees; see test_rollout_gradient_matches_central_finite_differences.)"""
    spec, params = case(name, K=2)
    by_hand = compiled_model(spec, 2, T, gradient="bptt").loss_and_grad(x, params)
    auto = compiled_model(spec, 2, T, gradient="autodiff").loss_and_grad(x, params)
    assert rel_err(by_hand[1], auto[1]) < 1e-13
    for n in params:
        assert rel_err(by_hand[2][n], auto[2][n]) < 1e-10, n


def test_input_and_weight_noise_enter_the_rollout_loss(compiled_model, x):
    spec = Spec(rollout_stride=1, hidden=4, rollout_steps=4, washout=3, input_noise=0.05, weight_noise=0.1, skip=True)
    params = random_params(spec, 1, seed=8, scale=0.4)
    compiled = compiled_model(spec, 1, T)
    rng = np.random.default_rng(9)
    noise = {"w_xh": rng.normal(0, 0.1, (1, 1, 4)), "w_hh": rng.normal(0, 0.1, (1, 4, 4)),
             "w_ho": rng.normal(0, 0.1, (1, 4, 1)), "w_xo": rng.normal(0, 0.1, (1, 1, 1)),
             "x": rng.normal(0, 0.05, (T, 1))}
    _, mse, grads = compiled.loss_and_grad(x, params, noise)
    q = {n: v[0] + noise[n][0] if n in noise else v[0] for n, v in params.items()}
    # the noisy inputs drive the teacher-forced states; the targets stay clean
    assert mse[0] == pytest.approx(np_rollout_mse(spec, x, q, 4, u=x + noise["x"]), rel=1e-12)
    assert compiled.loss_and_grad(x, params)[1][0] == pytest.approx(np_rollout_mse(spec, x, slot(params, 0), 4),
                                                                     rel=1e-12)  # no noise by default
    eps, n, i = 1e-6, "w_hh", (0, 1, 2)
    plus, minus = {**params, n: params[n].copy()}, {**params, n: params[n].copy()}
    plus[n][i] += eps
    minus[n][i] -= eps
    fd = (compiled.loss_and_grad(x, plus, noise)[0][0] - compiled.loss_and_grad(x, minus, noise)[0][0]) / (2 * eps)
    assert grads[n][i] == pytest.approx(fd, rel=1e-6)


def test_stacked_rollout_gives_each_models_own_loss(compiled_model, x):
    spec = CASES["relu_skip"]
    params = random_params(spec, 3, seed=4, scale=0.4)
    cost, mse, grads = compiled_model(spec, 3, T).loss_and_grad(x, params)
    for k in range(3):
        c1, m1, g1 = compiled_model(spec, 1, T).loss_and_grad(x, {n: v[k:k + 1] for n, v in params.items()})
        assert rel_err(mse[k], m1[0]) <= 1e-12
        for n in grads:
            assert rel_err(grads[n][k], g1[n][0]) <= 1e-10, n


@pytest.mark.parametrize("stride_, coverage, want", [
    (4, None, {1: 4, 8: 4, 128: 4}),  # no coverage: the stride at every horizon
    (4, 8, {1: 4, 32: 4, 33: 5, 64: 8, 128: 16}),  # wider once R / 8 passes the stride
    (8, 4, {2: 8, 32: 8, 64: 16, 128: 32}),
    (1, 1, {1: 1, 5: 5}),  # coverage 1: continuations that do not overlap
])
def test_coverage_widens_the_stride_at_long_horizons(stride_, coverage, want):
    spec = Spec(rollout_stride=stride_, rollout_coverage=coverage, rollout_steps=128)
    assert {R: stride(spec, R) for R in want} == want


def test_coverage_starts_the_continuations_further_apart(compiled_model, x):
    """At horizon 6 with coverage 2 the continuations start every 3rd state (the NumPy loss at that
    stride); at horizon 2 they keep the stride of 1: one graph per horizon, each with its own starts."""
    spec = Spec(rollout_stride=1, hidden=4, rollout_steps=6, washout=5, rollout_coverage=2)
    params = random_params(spec, 2, seed=5, scale=0.5)
    compiled = compiled_model(spec, 2, T)
    for steps, every in ((6, 3), (2, 1)):
        _, mse, _ = compiled.loss_and_grad(x, params, steps=steps)
        for k in range(2):
            assert mse[k] == pytest.approx(np_rollout_mse(spec, x, slot(params, k), steps, every=every), rel=1e-12)
    dense = compiled_model(Spec(rollout_stride=1, hidden=4, rollout_steps=6, washout=5), 2, T).loss_and_grad(x, params)[1]
    assert not np.allclose(dense, compiled.loss_and_grad(x, params)[1])


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "4"])
def test_coverage_must_be_null_or_a_positive_integer(value):
    with pytest.raises(ValueError, match=r"rollout_coverage: .*(minimum of 1|not of type)"):
        Spec(rollout_coverage=value)


def test_rollout_must_leave_a_start_point():
    check_rollout(50, 40, 9)
    with pytest.raises(ValueError, match=r"rollout_steps \(40\) \+ washout \(10\) must be < the training length \(50\)"):
        check_rollout(50, 40, 10)


@pytest.mark.parametrize("steps, schedule, want", [
    (1, "doubling", [1]), (1, "fixed", [1]), (2, "doubling", [1, 2]), (5, "doubling", [1, 2, 4, 5]),
    (8, "doubling", [1, 2, 4, 8]), (50, "doubling", [1, 2, 4, 8, 16, 32, 50]), (50, "fixed", [50]),
])
def test_horizons_double_from_one_step_up_to_rollout_steps(steps, schedule, want):
    assert train.horizons(steps, schedule) == want


def test_stage_budgets_share_the_budget_out():
    assert train.stage_budgets(10, 4) == [3, 3, 2, 2]
    assert sum(train.stage_budgets(1001, 7)) == 1001
    assert train.stage_budgets(2, 4) == [1, 1, 0, 0]
    # the one-step stage weighted: 6 shares of 13 for it, 1 for each of seven longer horizons
    assert train.stage_budgets(1300, 8, 6) == [600] + [100] * 7
    assert train.stage_budgets(10, 3, 0) == [0, 5, 5] and sum(train.stage_budgets(1001, 8, 2.5)) == 1001
    for bad in (-1.0, float("nan"), True):
        with pytest.raises(ValueError, match="onestep_weight: .*(minimum of 0|finite number|not of type)"):
            train.check_settings(onestep_weight=bad)


def test_a_weighted_one_step_stage_trains_longer_than_the_others(compiled_model, x):
    spec = Spec(rollout_stride=1, hidden=3, rollout_steps=4, washout=2, l2=0.0)
    out = train.train_all(compiled_model(spec, 2, T), x, [0, 1], ["lbfgs"], bfgs_maxiter=12, bfgs_gtol=1e-12,
                          onestep_weight=4.0)
    # horizons 1, 2, 4 with weights 4, 1, 1: 8, 2 and 2 iterations (the curve holds each iteration's cost)
    assert [info["iterations"] for info in out["lbfgs"]["bfgs"]] == [12, 12]
    alone = train.train_all(compiled_model(Spec(hidden=3, washout=2, l2=0.0), 2, T), x, [0, 1], ["lbfgs"],
                            bfgs_maxiter=8, bfgs_gtol=1e-12)
    assert out["lbfgs"]["bfgs"][0]["curve"][:8] == alone["lbfgs"]["bfgs"][0]["curve"]


def test_schedule_runs_every_horizon_with_its_share_of_iterations(compiled_model, x):
    spec = Spec(rollout_stride=1, hidden=3, rollout_steps=4, washout=2, l2=0.0)
    seeds = [0, 1]
    out = train.train_all(compiled_model(spec, 2, T), x, seeds, ["lbfgs", "sgd"], epochs=9, bfgs_maxiter=12,
                          bfgs_gtol=1e-12, log_every=1)
    # horizons 1, 2, 4: 4 iterations each (none of them converges that fast); SGD 3 epochs each
    assert [info["iterations"] for info in out["lbfgs"]["bfgs"]] == [12, 12]
    assert sorted({r["epoch"] for r in out["sgd"]["curve"]}) == list(range(9))
    fixed = train.train_all(compiled_model(spec, 2, T), x, seeds, ["lbfgs"], bfgs_maxiter=12, bfgs_gtol=1e-12,
                            rollout_schedule="fixed")
    start = init_params(spec, seeds)
    final = compiled_model(spec, 2, T).loss_and_grad(x, out["lbfgs"]["params"])[1]
    assert np.all(final < compiled_model(spec, 2, T).loss_and_grad(x, start)[1])
    assert not np.array_equal(fixed["lbfgs"]["params"]["w_hh"], out["lbfgs"]["params"]["w_hh"])


# --- teacher forcing of the closed loop (rollout_forcing, rollout_forcing_interval) ---------------------------

def np_forced_mse(spec, x, q, steps, alpha, u=None):
    """The forced closed-loop loss of one model, the slow way: after its j-th step the state and the
    prediction to be fed back are mixed, (1 - alpha[j]) model + alpha[j] teacher-forced; loss before mixing."""
    u = x if u is None else u
    hs, ys = np_teacher_forced(spec, u, q)
    errors = []
    for t in range(spec.washout, len(x) - steps, spec.rollout_stride):
        h, y, predictions = hs[t], ys[t], [ys[t]]
        for j in range(steps - 1):
            a = alpha[j]
            h, y = np_step(spec, (1 - a) * y + a * u[t + j + 1, 0], (1 - a) * h + a * hs[t + j], q)
            predictions.append(y)
        errors.append(np.array(predictions) - x[t + 1:t + 1 + steps, 0])
    return float(np.mean(np.square(errors)))


FORCED = {
    "gtf": Spec(rollout_stride=2, hidden=4, rollout_steps=7, washout=5, rollout_forcing=0.3),
    "sparse": Spec(rollout_stride=3, hidden=4, rollout_steps=9, washout=4, rollout_forcing_interval=3, skip=True),
    "both_relu": Spec(rollout_stride=2, hidden=3, rollout_steps=6, washout=2, rollout_forcing=0.2,
                      rollout_forcing_interval=2, nonlinearity="relu", skip=True),
    "gtf_short": Spec(rollout_stride=1, hidden=3, rollout_steps=2, washout=2, rollout_forcing=0.5),
}


def test_forcing_is_off_by_default_and_its_schedule_is_as_documented():
    assert forcing(Spec(rollout_steps=128), 128) is None
    assert forcing(Spec(rollout_forcing=0.25), 4).tolist() == [0.25, 0.25, 0.25]
    assert forcing(Spec(rollout_forcing_interval=3), 8).tolist() == [0, 0, 0, 1, 0, 0, 1]
    assert forcing(Spec(rollout_forcing=0.1, rollout_forcing_interval=2), 6).tolist() == [0.1, 0.1, 1, 0.1, 1]


@pytest.mark.parametrize("name", FORCED)
def test_forced_rollout_loss_matches_numpy_transcription(compiled_model, x, name):
    spec = FORCED[name]
    params = random_params(spec, 2, seed=11, scale=0.5)
    noise = {"x": np.random.default_rng(3).normal(0, 0.05, (T, 2))} if spec.input_noise else None
    _, mse, _ = compiled_model(spec, 2, T).loss_and_grad(x, params, noise)
    alpha = forcing(spec, spec.rollout_steps)
    for k in range(2):
        assert mse[k] == pytest.approx(np_forced_mse(spec, x, slot(params, k), spec.rollout_steps, alpha), rel=1e-12)


@pytest.mark.parametrize("name", FORCED)
def test_forced_gradient_by_hand_matches_finite_differences_and_pytensor_grad(compiled_model, x, name):
    spec = FORCED[name]
    params = random_params(spec, 1, seed=12, scale=0.5)
    compiled = compiled_model(spec, 1, T)
    _, mse, grads = compiled.loss_and_grad(x, params)
    if spec.nonlinearity != "relu":  # pytensor.grad through the closed-loop scan is off at relu (above)
        auto = compiled_model(spec, 1, T, gradient="autodiff").loss_and_grad(x, params)
        assert rel_err(mse, auto[1]) < 1e-13
        for n in params:
            assert rel_err(grads[n], auto[2][n]) < 1e-10, n
    for n, fd in finite_differences(compiled, x, params).items():
        assert rel_err(grads[n], fd) < 2e-6, f"{n}: by hand {grads[n].ravel()} vs fd {fd.ravel()}"


def test_forced_gradient_with_input_noise_and_stacked_models(compiled_model, x):
    """The data states are those of the noisy inputs (what teacher forcing feeds); each model its own."""
    spec = Spec(rollout_stride=2, hidden=4, rollout_steps=6, washout=3, input_noise=0.05, rollout_forcing=0.4,
                rollout_forcing_interval=4)
    params = random_params(spec, 2, seed=13, scale=0.5)
    noise = {"x": np.random.default_rng(4).normal(0, 0.05, (T, 2))}
    _, mse, grads = compiled_model(spec, 2, T).loss_and_grad(x, params, noise)
    auto = compiled_model(spec, 2, T, gradient="autodiff").loss_and_grad(x, params, noise)
    for k in range(2):
        u = x + noise["x"][:, k:k + 1]
        assert mse[k] == pytest.approx(np_forced_mse(spec, x, slot(params, k), 6, forcing(spec, 6), u=u), rel=1e-12)
    for n in params:
        assert rel_err(grads[n], auto[2][n]) < 1e-10, n


@pytest.mark.parametrize("skip", [False, True])
def test_forcing_that_never_mixes_is_the_plain_closed_loop(compiled_model, x, skip):
    """An interval past the horizon: the forced graph, with every alpha 0, gives the plain loss and gradient."""
    plain = Spec(rollout_stride=2, hidden=4, rollout_steps=6, washout=3, skip=skip)
    never = Spec(rollout_stride=2, hidden=4, rollout_steps=6, washout=3, skip=skip, rollout_forcing_interval=50)
    params = random_params(plain, 2, seed=14, scale=0.5)
    a, b = compiled_model(plain, 2, T).loss_and_grad(x, params), compiled_model(never, 2, T).loss_and_grad(x, params)
    assert rel_err(b[1], a[1]) < 1e-14
    for n in params:
        assert rel_err(b[2][n], a[2][n]) < 1e-12, n


@pytest.mark.parametrize("setting", [{"rollout_forcing": 1.0}, {"rollout_forcing": 1.0, "rollout_forcing_interval": 2}])
def test_forcing_every_step_is_the_one_step_loss_over_the_windows(compiled_model, x, setting):
    """alpha = 1 (whatever the interval): every prediction is the teacher-forced one-step prediction, so the
    loss is the one-step error averaged over the windows [t, t + R) of the start points t, and its gradient
    is the one-step loss's with those weights (here: one window per step, stride = R, washout 0)."""
    R = 5
    spec = Spec(hidden=4, rollout_steps=R, rollout_stride=R, washout=0, skip=True, **setting)
    params = random_params(spec, 2, seed=15, scale=0.5)
    _, mse, grads = compiled_model(spec, 2, T).loss_and_grad(x, params)
    n_windows = len(range(0, T - R, R))  # the one-step loss over its first n_windows * R predictions
    short = x[:n_windows * R + 1]
    one = compiled_model(Spec(hidden=4, skip=True, l2=spec.l2), 2, len(short)).loss_and_grad(short, params)
    assert rel_err(mse, one[1]) < 1e-12
    for n in params:
        assert rel_err(grads[n], one[2][n]) < 1e-10, n


@pytest.mark.parametrize("key, value, message", [
    ("rollout_forcing", 1.5, "maximum of 1"), ("rollout_forcing", -0.1, "minimum of 0"),
    ("rollout_forcing", "0.1", "not of type"), ("rollout_forcing_interval", 0, "minimum of 1"),
    ("rollout_forcing_interval", 2.5, "not of type"),
])
def test_forcing_settings_are_checked_by_name(key, value, message):
    with pytest.raises(ValueError, match=rf"{key}: .*{message}"):
        Spec(**{key: value})
