"""rnn.exponents: the largest Lyapunov exponent of a map and of an RNN's closed loop, on systems whose
exponent is known."""

import time

import numpy as np
import pytest

from rnn.data import MACKEY_GLASS_SUB_STEPS, mackey_glass_rate
from rnn.exponents import (NONLINEARITIES, closed_loop, largest_exponent_map, rnn_exponent, tangent_map,
                           warmed_up)
from rnn.lyapunov import largest_exponent


def linear(A):
    """x -> A x on states (..., n)."""
    return tangent_map(lambda x: x @ A.T, lambda x: np.broadcast_to(A, x.shape + (x.shape[-1],)))


@pytest.mark.parametrize("A, name", [
    (np.diag([0.5, -0.9, 0.2]), "diagonal, contracting"),
    (np.array([[1.2, 0.3], [0.0, 0.7]]), "triangular, expanding"),
    (1.1 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]), "rotation: a complex pair"),
    (np.random.default_rng(3).normal(size=(6, 6)) / np.sqrt(6), "random 6x6"),
])
def test_a_linear_map_has_the_log_of_its_spectral_radius(A, name):
    run = largest_exponent_map(linear(A), np.ones((3, len(A))), steps=2000, transient=200)
    known = np.log(np.max(np.abs(np.linalg.eigvals(A))))
    # the rotation's growth per step oscillates with the angle (bounded), so its mean is within ~1/steps
    assert run["exponent"] == pytest.approx(known, abs=2e-3), name
    assert not run["diverged"]


def logistic(r=4.0):
    return lambda x, v: (r * x * (1 - x), r * (1 - 2 * x) * v)


def henon(a=1.4, b=0.3):
    def advance(s, v):
        x, y = s[..., 0], s[..., 1]
        dx, dy = v[..., 0], v[..., 1]
        return np.stack([1 - a * x**2 + y, b * x], -1), np.stack([-2 * a * x * dx + dy, b * dx], -1)
    return advance


def test_the_logistic_map_at_r_4_has_ln_2():
    x0 = np.random.default_rng(0).uniform(0.1, 0.9, (8, 1))
    run = largest_exponent_map(logistic(), x0, steps=20000, transient=100)
    # the exact value lies within 4 standard errors of the estimate, and the error is small
    assert abs(run["exponent"] - np.log(2)) < 4 * run["stderr"]
    assert run["stderr"] < 0.001 and run["per_chain"].shape == (8,)  # measured: 0.69314 +- 0.00005


def test_the_henon_map_has_its_known_exponent():
    x0 = np.random.default_rng(0).uniform(-0.1, 0.1, (8, 2))
    run = largest_exponent_map(henon(), x0, steps=20000, transient=500)
    known = 0.41922  # Sprott, Chaos and Time-Series Analysis (2003), table of exponents
    assert abs(run["exponent"] - known) < max(4 * run["stderr"], 2e-3)
    assert run["stderr"] < 0.003  # measured: 0.4202 +- 0.0010


def mackey_glass_map(tau=17):
    """One sample of the study's Mackey-Glass integrator (10 Euler sub-steps) as a map on its full state
    (C, tau*10 + 1): the delay buffer oldest first, then x; and its tangent map (sparse: the buffer
    shifts, x mixes with the value tau ago)."""
    n = MACKEY_GLASS_SUB_STEPS

    def advance(s, v):
        x, dx = s[:, -1], v[:, -1]
        pushed, dpushed = [], []
        for j in range(n):
            x_tau, dx_tau = s[:, j], v[:, j]
            pushed.append(x)
            dpushed.append(dx)
            slope = 0.2 * (1 - 9 * x_tau**10) / (1 + x_tau**10) ** 2  # d rate / d x_tau
            x, dx = x + mackey_glass_rate(x, x_tau) / n, dx * (1 - 0.1 / n) + slope * dx_tau / n
        return (np.concatenate([s[:, n:-1], np.stack(pushed, 1), x[:, None]], 1),
                np.concatenate([v[:, n:-1], np.stack(dpushed, 1), dx[:, None]], 1))

    return advance


def test_mackey_glass_as_a_map_reproduces_the_two_trajectory_estimate():
    tau, chains, samples, transient, seed = 17, 2, 3000, 1000, 0
    reference = largest_exponent("mackey_glass", tau=tau, samples=samples, transient=transient, chains=chains)
    # the same start as rnn.lyapunov: its seeded histories, its transient, its displacement direction
    lag = tau * MACKEY_GLASS_SUB_STEPS
    rng = np.random.default_rng([seed, 0])
    s = np.concatenate([1.2 + 0.2 * (rng.random((chains, lag)) - 0.5), np.full((chains, 1), 1.2)], axis=1)
    advance = mackey_glass_map(tau)
    for _ in range(transient):
        s, _ = advance(s, s)
    ring = np.random.default_rng([seed, 1]).normal(size=s.shape)  # indexed by rnn.lyapunov's ring buffer
    pointer = transient * MACKEY_GLASS_SUB_STEPS % lag
    v0 = np.concatenate([np.roll(ring[:, :lag], -pointer, axis=1), ring[:, lag:]], axis=1)
    run = largest_exponent_map(advance, s, samples, transient=0, blocks=3, v0=v0)
    # the tangent form is the d0 -> 0 limit of the two trajectories: the same numbers, chain by chain
    np.testing.assert_allclose(run["per_chain"], reference["per_chain"], rtol=1e-4)
    assert 0.004 < run["exponent"] < 0.008  # ~0.0061 per sample over 20000 samples and 8 chains


def random_params(K, H, gain, seed=0, skip=False, scale_in=1.0):
    rng = np.random.default_rng(seed)
    p = {"w_xh": rng.normal(0, scale_in, (K, 1, H)), "w_hh": rng.normal(0, gain / np.sqrt(H), (K, H, H)),
         "b_h": rng.normal(0, 0.1, (K, H)), "w_ho": rng.normal(0, 1 / np.sqrt(H), (K, H, 1)),
         "b_o": rng.normal(0, 0.1, (K, 1))}
    if skip:
        p["w_xo"] = rng.normal(0, 0.5, (K, 1, 1))
    return p


def closed_loop_matrix(p, k):
    """The linear closed loop on (h, y) of model k, as a row-vector map [h, y] -> [h, y] M."""
    w_xh, w_hh, w_ho = p["w_xh"][k], p["w_hh"][k], p["w_ho"][k]
    w_xo = p["w_xo"][k] if "w_xo" in p else np.zeros((1, 1))
    return np.block([[w_hh, w_hh @ w_ho], [w_xh, w_xh @ w_ho + w_xo]])


WARMUP = np.sin(0.3 * np.arange(50))[:, None] * np.array([1.0, 0.5, -0.7])  # (50, 3): three chains


@pytest.mark.parametrize("skip", [False, True])
def test_a_linear_contracting_rnn_has_the_log_spectral_radius_of_its_closed_loop(skip):
    p = random_params(3, 8, gain=0.3, skip=skip, scale_in=0.2)
    run = rnn_exponent(p, "linear", WARMUP, steps=2000, transient=200)
    known = [np.log(np.max(np.abs(np.linalg.eigvals(closed_loop_matrix(p, k))))) for k in range(3)]
    assert np.all(np.array(known) < 0)
    np.testing.assert_allclose(run["exponent"], known, atol=2e-3)
    assert run["fixed_point"].all() and not run["diverged"].any()  # it settled where the bias puts it
    assert np.isnan(run["lyapunov_time_steps"]).all()


def test_an_rnn_built_as_a_rotation_has_its_known_exponent():
    # h_t = h_{t-1} (w_hh + w_ho w_xh), linear: w_hh a rotation by 0.4 scaled by 0.95, readout zero-weighted
    # through a zero input weight, so the closed loop is exactly that 2x2 map (and y = b_o, a constant)
    angle, radius = 0.4, 0.95
    w_hh = radius * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    p = {"w_xh": np.zeros((1, 1, 2)), "w_hh": w_hh[None], "b_h": np.zeros((1, 2)),
         "w_ho": np.array([[[1.0], [0.0]]]), "b_o": np.zeros((1, 1))}
    run = rnn_exponent(p, "linear", np.ones((5, 2)), steps=1000, transient=100)
    assert run["exponent"][0] == pytest.approx(np.log(radius), abs=1e-3)


def test_a_tanh_fixed_point_has_the_log_of_its_jacobians_spectral_radius():
    p = random_params(2, 10, gain=0.5, scale_in=0.3)
    run = rnn_exponent(p, "tanh", WARMUP, steps=1000, transient=500)
    assert run["fixed_point"].all()
    z = warmed_up(p, "tanh", WARMUP)
    assert z.shape == (2, 3, 11)  # (K, chains, H + 1): h and the next input y
    advance = closed_loop(p, "tanh")
    for _ in range(3000):
        z, _ = advance(z, z)
    for k in range(2):  # the Jacobian at model k's fixed point, column by column from the tangent map
        n = z.shape[-1]
        J = np.stack([advance(z[:, :1], np.broadcast_to(np.eye(n)[i], (2, 1, n)))[1][k, 0] for i in range(n)])
        # exact in the limit; over 1000 steps the log growth of a complex pair oscillates: O(1 / steps)
        assert run["exponent"][k] == pytest.approx(np.log(np.max(np.abs(np.linalg.eigvals(J)))), abs=1e-4)


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("skip", [False, True])
def test_the_tangent_map_is_the_derivative_of_the_closed_loop(nonlinearity, skip):
    p = random_params(2, 7, gain=1.5, skip=skip)
    z = warmed_up(p, nonlinearity, WARMUP[:5])  # a short warm-up: a linear or relu net with gain 1.5 grows
    v = np.random.default_rng(1).normal(size=z.shape)
    advance = closed_loop(p, nonlinearity)
    eps = 1e-6
    central = (advance(z + eps * v, v)[0] - advance(z - eps * v, v)[0]) / (2 * eps)
    np.testing.assert_allclose(advance(z, v)[1], central, rtol=1e-6, atol=1e-8)


def chaotic_rnn():
    return random_params(2, 30, gain=2.0, seed=6)  # both models chaotic (other seeds give cycles, fixed points)


def test_a_chaotic_rnn_is_positive_and_unaffected_by_how_the_tangent_vector_starts():
    p = chaotic_rnn()
    a = rnn_exponent(p, "tanh", WARMUP, steps=3000, transient=500, seed=0)
    b = rnn_exponent(p, "tanh", WARMUP, steps=3000, transient=500, seed=7)
    assert (a["exponent"] > 10 * a["stderr"]).all() and not a["fixed_point"].any()
    # the two vectors turn to the same direction at the rate of the gap to the second exponent; what the
    # start leaves is thousands of times below the statistical error (measured: 1e-7 against 2e-3)
    np.testing.assert_allclose(a["per_chain"], b["per_chain"], atol=1e-4 * a["stderr"].min())
    np.testing.assert_allclose(a["lyapunov_time_steps"], 1 / a["exponent"])


def test_a_chaotic_rnn_agrees_with_two_nearby_trajectories():
    p, d0, steps = chaotic_rnn(), 1e-9, 3000
    run = rnn_exponent(p, "tanh", WARMUP, steps=steps, transient=500)
    advance = closed_loop(p, "tanh")
    z = warmed_up(p, "tanh", WARMUP)
    for _ in range(500):
        z, _ = advance(z, z)
    delta = np.random.default_rng(2).normal(size=z.shape)
    other = z + d0 * delta / np.linalg.norm(delta, axis=-1, keepdims=True)
    growth = 0.0
    for _ in range(steps):
        z, other = advance(z, z)[0], advance(other, other)[0]
        d = np.linalg.norm(other - z, axis=-1)
        growth = growth + np.log(d / d0)
        other = z + (other - z) * (d0 / d)[..., None]
    two_trajectories = (growth / steps).mean(axis=-1)
    np.testing.assert_allclose(run["exponent"], two_trajectories, atol=3 * run["stderr"].max())


def test_stacked_models_give_what_each_gives_alone():
    p = random_params(3, 12, gain=1.8, seed=5)
    together = rnn_exponent(p, "tanh", WARMUP, steps=500, transient=50)
    for k in range(3):
        alone = rnn_exponent({n: v[k:k + 1] for n, v in p.items()}, "tanh", WARMUP, steps=500, transient=50)
        np.testing.assert_allclose(alone["per_chain"][0], together["per_chain"][k], rtol=1e-12)


def test_a_diverging_run_is_nan_and_flagged_and_a_dead_relu_is_minus_infinity():
    p = random_params(2, 6, gain=3.0, seed=1)
    p["w_hh"][1] *= 0.05  # model 1 contracts, model 0 blows up
    run = rnn_exponent(p, "linear", WARMUP, steps=3000, transient=0)
    assert run["diverged"].tolist() == [True, False] and np.isnan(run["exponent"][0]) and np.isnan(run["stderr"][0])
    assert np.isfinite(run["exponent"][1]) and not run["fixed_point"][0]
    dead = random_params(1, 6, gain=1.0)
    dead["b_h"][:] = -100.0  # every unit off: the tangent map is zero
    run = rnn_exponent(dead, "relu", WARMUP, steps=100, transient=10)
    assert run["exponent"][0] == -np.inf and run["fixed_point"][0] and np.isnan(run["stderr"][0])


def test_it_is_fast_enough_for_the_train_job():
    p = random_params(5, 60, gain=1.5)
    start = time.perf_counter()
    run = rnn_exponent(p, {"nonlinearity": "tanh"}, WARMUP, steps=10000, transient=1000)
    assert time.perf_counter() - start < 10  # ~0.5 s measured; generous for a shared machine
    assert run["exponent"].shape == (5,) and run["per_chain"].shape == (5, 3)


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        rnn_exponent(chaotic_rnn(), "softplus", WARMUP)
    with pytest.raises(ValueError, match="steps >= blocks"):
        largest_exponent_map(logistic(), np.full((2, 1), 0.3), steps=5, blocks=10)
