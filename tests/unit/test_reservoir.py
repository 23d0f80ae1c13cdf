"""The reservoir reference: spectral-radius rescaling of the initial w_hh, the ridge read-out against a
least-squares solve on the same states, and the ridge optimizer in train_all."""

import numpy as np
import pytest

from rnn import train
from rnn.data import mackey_glass
from rnn.model import Spec, init_params
from rnn.ridge import fit_readout

from numpy_model import np_teacher_forced, rel_err

T = 120


@pytest.fixture(scope="module")
def x():
    return mackey_glass(300, seed=1)[0][:T]


@pytest.mark.parametrize("hidden, radius", [(5, 0.9), (30, 1.2), (30, 0.3)])
def test_spectral_radius_rescales_each_seeds_recurrent_matrix(hidden, radius):
    seeds = [0, 1, 2]
    raw = init_params(Spec(hidden=hidden, init_scale_rec=0.1), seeds)
    scaled = init_params(Spec(hidden=hidden, init_scale_rec=0.1, spectral_radius=radius), seeds)
    for k in range(3):
        assert np.max(np.abs(np.linalg.eigvals(scaled["w_hh"][k]))) == pytest.approx(radius, rel=1e-12)
        ratio = scaled["w_hh"][k] / raw["w_hh"][k]
        assert np.allclose(ratio, ratio.flat[0])  # a rescaled draw, not a new one
    for n in ("w_xh", "b_h", "w_ho", "b_o"):
        assert np.array_equal(scaled[n], raw[n])


def test_spectral_radius_null_leaves_the_draw_and_needs_a_recurrent_scale():
    assert np.array_equal(init_params(Spec(spectral_radius=None), [3])["w_hh"], init_params(Spec(), [3])["w_hh"])
    with pytest.raises(ValueError, match="spectral_radius needs init_scale_rec > 0"):
        Spec(init_scale_rec=0.0, spectral_radius=0.9)
    for bad in (0.0, -1.0, float("inf"), True, "0.9"):
        with pytest.raises(ValueError, match="spectral_radius: .*(minimum of 0|finite number|not of type)"):
            Spec(spectral_radius=bad)


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("ridge", [0.0, 1e-6, 1e-2])
def test_ridge_readout_is_the_least_squares_solve_on_the_same_states(x, skip, ridge):
    rng = np.random.default_rng(0)
    K, H, washout = 2, 12, 10
    states = np.tanh(rng.normal(size=(T, K, H)))
    readout, ok = fit_readout(states, x, washout, ridge, skip)
    assert ok.all()
    target = x[washout + 1:, 0]
    for k in range(K):
        columns = [states[washout:T - 1, k], np.ones((T - 1 - washout, 1))] + ([x[washout:T - 1]] if skip else [])
        phi = np.concatenate(columns, axis=1)
        # ridge as least squares on rows augmented by sqrt(ridge) * I (the bias row left out: not penalised)
        penalised = [i for i in range(phi.shape[1]) if i != H]
        extra = np.sqrt(ridge) * np.eye(phi.shape[1])[penalised]
        w = np.linalg.lstsq(np.vstack([phi, extra]), np.concatenate([target, np.zeros(len(penalised))]), rcond=None)[0]
        assert rel_err(readout["w_ho"][k, :, 0], w[:H]) < 1e-8
        assert readout["b_o"][k, 0] == pytest.approx(w[H], rel=1e-8, abs=1e-12)
        if skip:
            assert readout["w_xo"][k, 0, 0] == pytest.approx(w[H + 1], rel=1e-8)
    assert ("w_xo" in readout) == skip


def test_ridge_readout_flags_an_unsolvable_model(x):
    states = np.zeros((T, 2, 4))
    states[:, 1] = np.random.default_rng(1).normal(size=(T, 4))
    readout, ok = fit_readout(states, x, 5, 0.0)  # model 0: all-zero states, a singular system
    assert ok.tolist() == [False, True]
    assert np.isnan(readout["w_ho"][0]).all() and np.isfinite(readout["w_ho"][1]).all()


def test_ridge_rejects_bad_settings(x):
    with pytest.raises(ValueError, match="ridge: .*(minimum of 0|finite number|not of type)"):
        fit_readout(np.zeros((T, 1, 2)), x, 5, -1.0)
    with pytest.raises(ValueError, match=r"washout \(119\) must leave at least one training pair"):
        fit_readout(np.zeros((T, 1, 2)), x, T - 1, 1e-8)


def test_ridge_optimizer_fits_the_readout_of_the_initial_reservoir(compiled_model, x):
    spec = Spec(hidden=20, init_scale_in=0.5, init_scale_rec=1.0, spectral_radius=0.9, washout=15, skip=True)
    seeds = [0, 1]
    start = init_params(spec, seeds)
    out = train.train_all(compiled_model(spec, 2, T), x, seeds, ["ridge"], ridge=1e-4)["ridge"]
    assert not out["diverged"].any()
    for n in ("w_xh", "w_hh", "b_h"):  # the reservoir stays as drawn
        assert np.array_equal(out["params"][n], start[n])
    for k in range(2):
        q = {n: v[k] for n, v in start.items()}
        hs, _ = np_teacher_forced(spec, x, q)
        want, ok = fit_readout(hs[:, None, :], x, spec.washout, 1e-4, skip=True)
        assert rel_err(out["params"]["w_ho"][k], want["w_ho"][0]) < 1e-9
        assert out["params"]["b_o"][k, 0] == pytest.approx(want["b_o"][0, 0], rel=1e-9)
    # the fit is good: after the washout its one-step error is far below the series' variance
    for k in range(2):
        _, y = np_teacher_forced(spec, x, {n: v[k] for n, v in out["params"].items()})
        assert np.mean((y[spec.washout:-1] - x[spec.washout + 1:, 0]) ** 2) < 1e-3 * np.var(x)


def test_with_input_noise_each_model_fits_clean_targets_on_its_own_noisy_states(compiled_model, x):
    """Input noise drives the states (one fixed draw per model) and the skip term; the targets stay the clean
    series, and each stacked model's read-out is the one it gets alone."""
    spec = Spec(hidden=20, init_scale_in=0.5, init_scale_rec=1.0, init_scale_bias=0.2, spectral_radius=0.9,
                washout=15, skip=True, input_noise=0.01)
    both = train.train_all(compiled_model(spec, 2, T), x, [0, 1], ["ridge"], ridge=1e-6)["ridge"]["params"]
    noise = train.fixed_input_noise(spec, [0, 1], T)["x"]
    start = init_params(spec, [0, 1])
    for k, seed in enumerate([0, 1]):
        alone = train.train_all(compiled_model(spec, 1, T), x, [seed], ["ridge"], ridge=1e-6)["ridge"]["params"]
        assert rel_err(both["w_ho"][k], alone["w_ho"][0]) < 1e-9
        q = {n: v[k] for n, v in start.items()}
        hs, _ = np_teacher_forced(spec, x + noise[:, k:k + 1], q)
        want, _ = fit_readout(hs[:, None, :], x, spec.washout, 1e-6, skip=True, inputs=x + noise[:, k:k + 1])
        assert rel_err(both["w_ho"][k], want["w_ho"][0]) < 1e-8
        assert both["w_xo"][k, 0, 0] == pytest.approx(want["w_xo"][0, 0, 0], rel=1e-8)


def test_the_readout_survives_nearly_collinear_states():
    """Hundreds of biased reservoir units at a tiny ridge: states so nearly collinear that the normal
    equations lose the fit; the least-squares solve keeps it (its one-step error is what lstsq's SVD
    solve of the same augmented problem gives)."""
    import scipy.linalg

    rng = np.random.default_rng(0)
    T_, H, washout, ridge = 1400, 300, 100, 1e-12
    series = np.sin(np.arange(T_) * 0.07)[:, None] + 0.3 * np.sin(np.arange(T_) * 0.19)[:, None]
    drive = series @ rng.normal(0, 0.4, (1, H)) + rng.normal(0, 0.07, H)
    states = np.tanh(drive)[:, None, :]  # (T, 1, H): smooth functions of one input, nearly collinear
    readout, ok = fit_readout(states, series, washout, ridge)
    assert ok.all()
    phi = np.concatenate([states[washout:-1, 0], np.ones((T_ - 1 - washout, 1))], axis=1)
    fitted = phi @ np.concatenate([readout["w_ho"][0, :, 0], readout["b_o"][0]])
    target = series[washout + 1:, 0]
    extra = np.sqrt(ridge) * np.eye(H + 1)[:H]
    w = scipy.linalg.lstsq(np.vstack([phi, extra]), np.concatenate([target, np.zeros(H)]), lapack_driver="gelsd")[0]
    best = np.mean((phi @ w - target) ** 2)
    assert np.mean((fitted - target) ** 2) <= 1.01 * best + 1e-20
