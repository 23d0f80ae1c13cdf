"""rnn.lyapunov: the largest Lyapunov exponent measured on each generator's own integrator."""

import numpy as np
import pytest

from rnn.lyapunov import largest_exponent

# Published values for Mackey-Glass, tau = 17, one sample per time unit: 0.0051 per sample (Farmer
# 1982's integration; NeuroBench's Lyapunov time of 197 steps), about 0.0056 (RK4, step 0.17), about
# 0.006 for the Euler recipe the tutorial uses (shared/notes/generation.md).
PUBLISHED_MG17 = (0.0050, 0.0065)


@pytest.fixture(scope="module")
def mg17():
    return largest_exponent("mackey_glass", tau=17, samples=8000, chains=4)


def test_mackey_glass_17_lies_in_the_published_range(mg17):
    lo, hi = PUBLISHED_MG17
    assert lo < mg17["lyapunov_per_sample"] < hi
    assert mg17["stderr"] < 0.0005 and len(mg17["per_chain"]) == 4
    assert mg17["lyapunov_time_steps"] == pytest.approx(1 / mg17["lyapunov_per_sample"])
    assert "Benettin" in mg17["method"] and mg17["tau"] == 17


def test_the_estimate_is_deterministic(mg17):
    again = largest_exponent("mackey_glass", tau=17, samples=8000, chains=4)
    assert again["per_chain"] == mg17["per_chain"]


def test_a_longer_delay_is_more_chaotic_and_lorenz_is_near_its_known_exponent(mg17):
    mg30 = largest_exponent("mackey_glass", tau=30, samples=8000, chains=4)
    assert mg30["lyapunov_per_sample"] > mg17["lyapunov_per_sample"] + mg30["stderr"] + mg17["stderr"]
    lorenz = largest_exponent("lorenz", samples=4000, chains=4)
    # 0.906 per time unit for the exact flow (Sprott), 0.05 time units per sample; forward Euler at
    # step 0.01 is a cruder map whose exponent is somewhat larger
    assert 0.8 * 0.906 * 0.05 < lorenz["lyapunov_per_sample"] < 1.3 * 0.906 * 0.05


def test_a_quasi_periodic_series_has_no_positive_exponent():
    mso = largest_exponent("mso")
    assert np.isnan(mso["lyapunov_per_sample"]) and "quasi-periodic" in mso["method"]


@pytest.mark.parametrize("kwargs, message", [
    ({"generator": "henon"}, "generator must be one of mackey_glass, mso, lorenz; got 'henon'"),
    ({"samples": 0}, "samples must be an integer >= 1"),
    ({"chains": 1}, "chains must be >= 2"),
    ({"tau": 2.5}, "tau must be an integer >= 1"),
])
def test_bad_arguments_are_refused_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        largest_exponent(**kwargs)
