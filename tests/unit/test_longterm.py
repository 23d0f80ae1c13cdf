"""rnn.longterm: the state-space divergence, the spectral distance, their floor and ceilings, the embedding."""

import itertools

import numpy as np
import pytest
from scipy.signal import lfilter

from rnn import longterm as lt
from rnn.data import generate

# A 30 000-sample reference (the study's default is 100 000) keeps the file fast; the free runs keep the
# default length (discard 500 + steps 10 000), so the floor and ceilings are those the study reports.
SETTINGS = lt.check_settings({"reference": 30000})
RUN = SETTINGS["discard"] + SETTINGS["steps"]


@pytest.fixture(scope="module")
def reference():
    return lt.true_trajectory("mackey_glass", SETTINGS["reference"], SETTINGS)


@pytest.fixture(scope="module")
def embedding(reference):
    return lt.choose_embedding(reference)


@pytest.fixture(scope="module")
def prepared(reference, embedding):
    return lt.prepare(reference, SETTINGS, embedding)


@pytest.fixture(scope="module")
def rows(prepared):
    return {r["detail"] if r["case"] == "truth" else r["case"]: r for r in lt.floors_and_ceilings(prepared, trials=2)}


@pytest.fixture(scope="module")
def long_run():
    """An independent MG17 trajectory twice the scored length (its own seed, not the reference's)."""
    return generate("mackey_glass", 2 * RUN, tau=17, seed=10_100)[:, 0]


def test_embedding_of_mackey_glass_17(embedding):
    # MG17's quasi-period is about 50 samples; its attractor (dimension about 2.1) unfolds in 3 delays
    assert 10 <= embedding["lag"] <= 14 and embedding["dim"] == 3
    assert embedding["fnn"][1] > 0.1 and embedding["fnn"][2] < lt.FNN_THRESHOLD
    assert len(embedding["ami"]) == 50 and embedding["ami"][0] > embedding["ami"][embedding["lag"] - 1]


def test_the_lag_of_a_gaussian_oscillation_is_its_first_autocorrelation_zero():
    # For a Gaussian series MI(k) = -log(1 - rho(k)^2) / 2: its first minimum is the first zero of rho.
    # AR(2) with poles r exp(+-i w): a noisy oscillation of period 2 pi / w; rho from its Yule-Walker recursion.
    r, period = 0.97, 40.0
    a1, a2 = 2 * r * np.cos(2 * np.pi / period), -r * r
    x = lfilter([1.0], [1.0, -a1, -a2], np.random.default_rng(7).normal(size=20000))[1000:]
    rho = [1.0, a1 / (1 - a2)]
    while rho[-1] > 0:
        rho.append(a1 * rho[-1] + a2 * rho[-2])
    zero = len(rho) - 1  # the first lag with rho < 0; the crossing lies between zero - 1 and zero
    lag, ami = lt.choose_lag(x, max_lag=60)  # past the later zeros of rho (about 31, 51): the first minimum counts
    assert zero - 1 <= lag <= zero and abs(lag - period / 4) <= 2
    assert ami[lag - 1] < 0.01 < ami[0]  # nearly independent there


def test_lorenz_unfolds_in_three_delays_from_the_first_not_the_deepest_minimum():
    x = generate("lorenz", 10000, seed=3)[:, 0]
    embedding = lt.choose_embedding(x)
    ami, lag = embedding["ami"], embedding["lag"]
    assert lag == 3 and ami[1] > ami[2] < ami[3]  # 0.15 time units
    assert min(ami) < 0.5 * ami[lag - 1]  # deeper minima further out (about lag 45) are not the choice
    assert embedding["dim"] == 3  # Kennel et al. (1992) found 3 for Lorenz


def test_a_sine_needs_two_delays_and_white_noise_any_number():
    t = np.arange(5000)
    period = 20 * np.sqrt(2)  # incommensurate with the sampling: the circle fills in, no repeated points
    dim, fnn = lt.choose_dim(np.sin(2 * np.pi * t / period), lag=7)
    assert dim == 2 and fnn[0] > 0.2  # one delay folds the circle onto a line
    with pytest.raises(ValueError, match="no dimension up to 5 has under 1% false neighbours at lag 3: set longterm.dim"):
        lt.choose_dim(np.random.default_rng(0).normal(size=3000), lag=3)


def test_embed_builds_delay_vectors():
    v = lt.embed(np.arange(10.0)[:, None], dim=3, lag=2)
    assert v.shape == (6, 3) and v[0].tolist() == [0, 2, 4] and v[-1].tolist() == [5, 7, 9]
    with pytest.raises(ValueError, match="no delay vector"):
        lt.embed(np.arange(4.0), dim=3, lag=2)


def test_identical_trajectories_score_zero(long_run):
    x = long_run[:RUN]
    prepared = lt.prepare(x[SETTINGS["discard"]:], SETTINGS, {"lag": 12, "dim": 3})
    assert prepared.score(x) == {"d_stsp": 0.0, "d_h": 0.0}
    points = lt.embed(x, 3, 12)
    assert lt.state_space_divergence(points, points, SETTINGS) == 0.0
    assert lt.state_space_divergence(x, x, SETTINGS) == 0.0  # a (n,) series: one dimension
    assert lt.spectral_distance(x, x, SETTINGS) == 0.0


def test_true_runs_score_far_below_the_ceilings_in_the_expected_order(rows, prepared):
    truth = {k: max(rows[f"seed {SETTINGS['seed'] + i}"][k] for i in (1, 2)) for k in ("d_stsp", "d_h")}
    c, s, n, w = rows["constant"], rows["sine"], rows["noise"], rows["worst"]
    # D_H: the sine at MG17's own peak shares its main spectral line, white noise spreads its power
    # evenly over all frequencies, the constant has none (1 by definition)
    assert truth["d_h"] < 0.03 < 0.1 < s["d_h"] < n["d_h"] < c["d_h"] == w["d_h"] == 1.0
    # D_stsp: white noise fills a blob that covers the attractor thinly; the sine traces a closed curve
    # through few of its cells; the constant sits in a cell it never visits (the worst value)
    assert truth["d_stsp"] < 0.3 < 3.0 < n["d_stsp"] < s["d_stsp"] < c["d_stsp"]
    assert c["d_stsp"] == pytest.approx(w["d_stsp"], rel=1e-12) and w["d_stsp"] == prepared.worst
    assert 45 < 1 / prepared.peak < 55  # the sine's period: MG17's quasi-period


def test_a_non_finite_run_scores_the_worst_value(prepared, long_run):
    x = long_run[:RUN].copy()
    worst = {"d_stsp": prepared.worst, "d_h": 1.0}
    for bad in (np.nan, np.inf, -np.inf):
        x[RUN // 2] = bad
        assert prepared.score(x) == worst
    huge = prepared.score(np.full(RUN, 1e300))  # finite but far outside the range: a cell the reference never visits
    assert huge["d_stsp"] == pytest.approx(prepared.worst, rel=1e-12) and huge["d_h"] == 1.0
    assert 10 < prepared.worst < 30 and np.isfinite(prepared.worst)


def test_points_outside_the_range_are_penalised_not_dropped(prepared, long_run):
    x = long_run[:RUN].copy()
    inside = prepared.score(x)["d_stsp"]
    x[SETTINGS["discard"] + SETTINGS["steps"] // 2:] += 10.0  # the second half leaves the attractor
    # half of q's mass leaves the reference's cells: KL grows by about log 2; dropping those points
    # (as a histogram over the range alone would) would leave a 5000-point run near the floor
    assert prepared.score(x)["d_stsp"] > inside + 0.6


def test_the_worst_value_is_the_largest_any_run_can_score():
    # a 1-D reference over 3 bins (+ 2 outside cells); every way of putting 4 points into the 5 cells
    reference = np.array([0.0, 0.1, 0.2, 0.5, 0.9, 1.0, 0.45])
    settings = {"bins": 3, "steps": 1000, "reference": 1000, "nperseg": 256, "smoothing": 0.5}
    edges = lt.histogram_edges(reference[:, None], lt.check_settings(settings))
    centres = np.array([-1.0, 0.1, 0.5, 0.9, 2.0])
    scores = [lt.state_space_divergence(reference, centres[list(c)], settings, edges)
              for c in itertools.combinations_with_replacement(range(5), 4)]
    worst = lt.worst_state_space_divergence(lt.occupation(reference[:, None], edges), 4, 0.5)
    assert max(scores) == pytest.approx(worst, rel=1e-12)


def test_the_measures_do_not_depend_on_the_start_point(prepared, long_run):
    near = prepared.score(long_run[:RUN]), prepared.score(long_run[100:100 + RUN])
    far = prepared.score(long_run[:RUN]), prepared.score(long_run[RUN:])
    # Tolerances against the floor's spread over independent runs (mean +- sd over 10 seeds at the
    # defaults: D_stsp 0.092 +- 0.028, D_H 0.010 +- 0.007) and the gap to the nearest ceiling (6.2, 0.28).
    # A 100-sample shift (1% of the window) moves a few points and every Welch segment: within 0.01,
    # 0.2% (D_stsp) and 4% (D_H) of that gap; measured 0.0006 and 0.006.
    assert abs(near[0]["d_stsp"] - near[1]["d_stsp"]) < 0.01 and abs(near[0]["d_h"] - near[1]["d_h"]) < 0.01
    # Disjoint windows of one trajectory are two draws of the floor: within about 4 floor sd.
    assert abs(far[0]["d_stsp"] - far[1]["d_stsp"]) < 0.1 and abs(far[0]["d_h"] - far[1]["d_h"]) < 0.03
    # a sine from another phase: the same spectrum to rounding (Welch ignores phase), the same
    # occupation up to which points of the cycle the samples hit
    sine = 0.3 * np.sin(2 * np.pi * prepared.peak * np.arange(RUN + 17))
    a, b = prepared.score(sine[:RUN]), prepared.score(sine[17:])
    assert a["d_stsp"] == pytest.approx(b["d_stsp"], rel=1e-4) and a["d_h"] == pytest.approx(b["d_h"], abs=1e-12)


def test_a_flat_run_has_no_spectrum(prepared, reference):
    x = np.full(RUN, reference.mean())
    x[SETTINGS["discard"]:] += 1e-9 * np.sin(np.arange(SETTINGS["steps"]) / 7)  # a vanishing oscillation
    assert prepared.score(x)["d_h"] == 1.0
    assert lt.spectral_distance(reference, np.zeros(SETTINGS["steps"]), SETTINGS) == 1.0
    noise = np.random.default_rng(3).normal(size=SETTINGS["steps"])
    assert 0.5 < lt.spectral_distance(reference, noise, SETTINGS) < 1.0


def test_scoring_is_deterministic_and_refuses_short_runs(prepared, reference, embedding, long_run):
    again = lt.prepare(reference, SETTINGS, embedding)
    assert again.score(long_run) == prepared.score(long_run) == lt.scores(reference, long_run, SETTINGS, embedding)
    assert lt.choose_embedding(reference) == embedding
    a = lt.true_trajectory("mackey_glass", 1000, SETTINGS, seed=10_200)
    assert np.array_equal(a, lt.true_trajectory("mackey_glass", 1000, SETTINGS, seed=10_200)) and a.shape == (1000,)
    with pytest.raises(ValueError, match=rf"longterm.discard \+ longterm.steps = {RUN} samples, got {RUN - 1}"):
        prepared.score(long_run[:RUN - 1])


def test_check_settings_fills_the_defaults():
    assert lt.check_settings({}) == lt.DEFAULTS
    s = lt.check_settings({"steps": 2000.0, "reference": 2000, "lag": 7, "nperseg": 256})
    assert s["steps"] == 2000 and isinstance(s["steps"], int) and s["lag"] == 7 and s["dim"] is None


@pytest.mark.parametrize("settings, message", [
    ({"steps": 999}, r"longterm.steps: 999 is less than the minimum of 1000"),
    ({"discard": -1}, r"longterm.discard: "),
    ({"reference": 5000}, r"longterm.reference must be an integer in \[longterm.steps = 10000, inf\), got 5000"),
    ({"lag": 0}, r"longterm.lag: "),
    ({"dim": 6}, r"longterm.dim: "),
    ({"dim": 2.5}, r"longterm.dim: "),
    ({"bins": 1}, r"longterm.bins: "),
    ({"bins": True}, r"longterm.bins: "),
    ({"bins": None}, r"longterm.bins: "),
    ({"margin": 0.0}, r"longterm.margin: "),
    ({"smoothing": 0}, r"longterm.smoothing: "),
    ({"smoothing": float("nan")}, r"longterm.smoothing: "),
    ({"nperseg": 8}, r"longterm.nperseg: 8 is less than the minimum of 16"),
    ({"nperseg": 20000}, r"longterm.nperseg must be an integer in \[16, longterm.steps = 10000\], got 20000"),
    ({"sigma": -1}, r"longterm.sigma: "),
    ({"seed": "1"}, r"longterm.seed: "),
    ({"bin": 20}, r"longterm: .*'bin' was unexpected.*allowed keys: steps, discard"),
])
def test_out_of_range_settings_are_refused_naming_the_key(settings, message):
    with pytest.raises(ValueError, match=message):
        lt.check_settings(settings)


def test_too_many_histogram_cells_are_refused(reference):
    with pytest.raises(ValueError, match=r"\(longterm.bins \+ 2\) \*\* dim = 108243216 cells"):
        lt.prepare(reference, {**SETTINGS, "bins": 100}, {"lag": 12, "dim": 4})
    with pytest.raises(ValueError, match="shorter than longterm.nperseg = 1024"):
        lt.spectral_distance(reference, reference[:1000], SETTINGS)
