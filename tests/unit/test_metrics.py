"""rnn.metrics: alignment of one-step errors, NRMSE, valid prediction time, spectral error, score."""

import numpy as np
import pytest

from rnn import metrics
from rnn.data import mackey_glass


@pytest.fixture(scope="module")
def series():
    return mackey_glass(600, seed=1)[0]


def test_one_step_mse_aligns_y_t_with_series_t_plus_1(series):
    s = series[:, 0]
    perfect = np.append(s[1:], 123.0)  # y[t] = series[t+1]; the last prediction has no target
    assert metrics.one_step_mse(perfect, series, 1, len(s)) == 0.0
    assert metrics.one_step_mse(perfect, series, 100, 200) == 0.0
    assert metrics.one_step_mse(s, series, 1, len(s)) > 1e-4  # the unshifted series is not perfect
    y = np.random.default_rng(0).normal(size=len(s))
    got = metrics.one_step_mse(y[:, None], series, 10, 50)  # (L, 1) input as well as (L,)
    assert got == pytest.approx(np.mean([(y[t - 1] - s[t]) ** 2 for t in range(10, 50)]), rel=1e-14)


@pytest.mark.parametrize("start, stop", [(0, 10), (10, 10), (20, 10), (1, 601)])
def test_one_step_mse_rejects_ranges_without_a_prediction(series, start, stop):
    with pytest.raises(ValueError, match=r"1 <= start < stop <= 600"):
        metrics.one_step_mse(series[:, 0], series, start, stop)


def test_nrmse_of_perfect_and_of_constant_mean_continuations(series):
    s = series[:, 0]
    std = s.std()
    assert metrics.nrmse(s, s, len(s), std) == 0.0
    assert metrics.nrmse(np.full(len(s), s.mean()), s, len(s), std) == pytest.approx(1.0, rel=1e-12)
    truth = s[100:300]
    assert 0.5 < metrics.nrmse(np.full(200, s.mean()), truth, 200, std) < 2.0  # about 1 on a stretch
    off = truth + 0.1 * std
    assert metrics.nrmse(off, truth, 50, std) == pytest.approx(0.1, rel=1e-9)


def test_nrmse_uses_only_the_first_steps():
    truth = np.zeros(10)
    cont = np.r_[np.zeros(3), np.ones(7)]
    assert metrics.nrmse(cont, truth, 3, 1.0) == 0.0
    assert metrics.nrmse(cont, truth, 4, 1.0) == pytest.approx(0.5)


@pytest.mark.parametrize("err, expected", [
    ([0.1, 0.2, 0.6, 0.1], 2),
    ([0.9, 0.0], 0),
    ([0.1, 0.2, 0.3, 0.4], 4),  # never exceeded: the full length (censored)
    ([0.1, 0.5, 0.5, 0.2], 4),  # exactly at the threshold is not over it
    ([0.1, -0.7, 0.1], 1),  # |error|
    ([0.1, 0.1, np.nan, 0.1], 2),  # NaN counts as exceeded
    ([0.1, np.inf], 1),
])
def test_valid_prediction_time_on_constructed_errors(err, expected):
    std = 2.0
    truth = np.linspace(-1, 1, len(err))
    cont = truth + std * np.asarray(err)
    assert metrics.valid_prediction_time(cont, truth, std) == expected
    assert metrics.valid_prediction_time(cont[:, None], truth[:, None], std) == expected


def test_valid_prediction_time_threshold_is_a_parameter():
    truth = np.zeros(5)
    cont = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert metrics.valid_prediction_time(cont, truth, 1.0, threshold=0.25) == 2
    assert metrics.VPT_THRESHOLD == 0.5


def test_spectral_error_bounds_and_special_cases(series):
    s = series[:400, 0]
    other = mackey_glass(400, seed=7)[0][:, 0]
    assert metrics.spectral_error(s, s) == pytest.approx(0.0, abs=1e-15)
    assert metrics.spectral_error(np.r_[s[:-1], np.nan], s) == 1.0  # non-finite
    assert metrics.spectral_error(np.r_[s[:-1], np.inf], s) == 1.0
    e = metrics.spectral_error(other, s)
    assert 0.0 < e < 1.0
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=128), rng.normal(size=128).cumsum()
        assert 0.0 <= metrics.spectral_error(a, b) <= 1.0


@pytest.mark.parametrize("value", [0.0, 0.3, -0.7, 0.1234])
def test_spectral_error_of_a_constant_continuation_is_1(series, value):
    """The docstring: a continuation collapsed to a constant has no power left and scores 1."""
    assert metrics.spectral_error(np.full(400, value), series[:400, 0]) == 1.0
    assert metrics.spectral_error(np.full((400, 1), value), series[:400]) == 1.0


def test_spectral_error_compares_spectral_shape_only(series):
    s = series[:400, 0]
    other = mackey_glass(400, seed=7)[0][:, 0]
    # mean and scale removed: same shape, same score
    assert metrics.spectral_error(3.0 * s + 5.0, s) == pytest.approx(0.0, abs=1e-12)
    assert metrics.spectral_error(2.0 * other - 1.0, s) == pytest.approx(metrics.spectral_error(other, s), rel=1e-12)
    # a total-variation distance between two finite spectra is symmetric
    assert metrics.spectral_error(other, s) == pytest.approx(metrics.spectral_error(s, other), rel=1e-12)
    # power at disjoint frequencies: close to 1; at the same frequency but another phase: close to 0
    t = np.arange(512)
    low, high = np.sin(2 * np.pi * 10 * t / 512), np.sin(2 * np.pi * 100 * t / 512)
    assert metrics.spectral_error(low, high) > 0.99
    assert metrics.spectral_error(np.sin(2 * np.pi * 10 * t / 512 + 1.0), low) < 0.05


def test_score_keys_follow_the_horizon(series):
    train, validation = 300, 100
    s = series[:, 0]
    y = np.append(s[1:], 0.0)
    for horizon, keys in [(1, [1]), (84, [1, 84]), (200, [1, 84, 200]), (300, [1, 84, 200])]:
        cont = s[train:train + horizon]
        out = metrics.score(y, cont, series, train, validation, lyapunov=0.01)
        assert sorted(k for k in out if k.startswith("nrmse_")) == sorted(f"nrmse_{h}" for h in keys)
        assert set(out) == set(metrics.nan_scores(horizon))  # a diverged run has the same columns
        assert out["train_mse"] == 0.0 and out["val_mse"] == 0.0
        assert all(out[f"nrmse_{h}"] == 0.0 for h in keys)
        assert out["vpt_steps"] == horizon and out["vpt_lyapunov"] == pytest.approx(horizon * 0.01)
        assert out["spectral_error"] == pytest.approx(0.0, abs=1e-12) or horizon == 1
    assert all(np.isnan(v) for v in metrics.nan_scores(500).values())


def test_score_of_a_poor_model(series):
    train, validation, horizon = 300, 100, 200
    s = series[:, 0]
    cont = np.full(horizon, s.mean())
    out = metrics.score(s, cont, series, train, validation)  # y = series: one step late
    assert out["train_mse"] == pytest.approx(np.mean((s[:train - 1] - s[1:train]) ** 2))
    assert out["val_mse"] == pytest.approx(np.mean((s[train - 1:train + validation - 1] - s[train:train + validation]) ** 2))
    assert 0.3 < out["nrmse_200"] < 3.0
    assert out["spectral_error"] == 1.0
    assert np.isnan(out["vpt_lyapunov"])  # unknown exponent
    blown = cont.copy()
    blown[50:] = np.nan
    out = metrics.score(s, blown, series, train, validation)
    assert np.isnan(out["nrmse_1"]) and np.isnan(out["nrmse_200"])
    assert out["vpt_steps"] <= 50 and out["spectral_error"] == 1.0
