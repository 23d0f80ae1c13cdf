"""rnn.anchors: Jaeger's protocol piece by piece on known cases, its protocol files and their validation."""

import copy
import math

import numpy as np
import pytest
import yaml

from helpers import REPO
from rnn import anchors, settings

PROTOCOL_FILES = [REPO / "config/anchors/jaeger2001.yaml", REPO / "config/anchors/jaeger-haas2004.yaml"]


def tiny_protocol(**changes):
    """A protocol small enough for a unit test: 30 units, 300 training samples, 3 trials."""
    p = copy.deepcopy(anchors.load(PROTOCOL_FILES[0])["protocols"][0])
    p["name"] = "tiny"
    p["network"].update(units=30, connectivity=0.2)
    p["training"].update(length=300, piece=300, discard=100)
    p["testing"].update(runs=3, teacher=100)
    p["seeds"] = [0, 1]
    for key, value in changes.items():
        block, name = key.split("__")
        p[block][name] = value
    return p


# --- the network ------------------------------------------------------------------------------------------

def test_the_reservoir_is_rescaled_to_the_spectral_radius_asked():
    w = anchors.reservoir(400, 0.0125, 0.4, 0.79, np.random.default_rng(0))
    assert anchors.spectral_radius(w) == pytest.approx(0.79, rel=1e-9)
    assert w.shape == (400, 400) and w.nnz < 0.02 * 400 * 400  # sparse, as drawn


def test_ternary_weights_have_the_connectivity_and_values_asked():
    w = anchors.ternary(np.random.default_rng(1), (400, 400), 0.4, 0.0125)
    nonzero = w[w != 0]
    assert set(np.unique(nonzero)) == {-0.4, 0.4}
    # 160 000 draws: the fraction within 5 standard errors (2.8e-4 each) of 1.25 %
    assert abs(nonzero.size / w.size - 0.0125) < 5 * math.sqrt(0.0125 * 0.9875 / w.size)
    assert abs(np.mean(nonzero > 0) - 0.5) < 0.05  # +0.4 and -0.4 equally often
    bias = anchors.ternary(np.random.default_rng(2), 20000, 0.14, 0.5)  # Report 6.2: 0.5, 0.25, 0.25
    assert abs(np.mean(bias == 0) - 0.5) < 0.02 and abs(np.mean(bias == 0.14) - 0.25) < 0.02


def test_a_network_is_a_function_of_its_seed():
    p = tiny_protocol()
    a, b, c = anchors.network(p, 3), anchors.network(p, 3), anchors.network(p, 4)
    assert (a["w"] != b["w"]).nnz == 0 and np.array_equal(a["w_back"], b["w_back"])
    assert not np.array_equal(a["w_back"], c["w_back"])
    assert a["retain"] == pytest.approx(1 - 0.44 * 0.9) and a["gain"] == pytest.approx(0.44)  # Report 6.2


def test_the_leaky_update_is_report_equation_21_and_teacher_forcing_feeds_y_of_n():
    net = anchors.network(tiny_protocol(), 0)
    teacher = np.array([0.1, -0.2, 0.3])
    states = anchors.harvest(net, teacher)
    assert np.all(states[0] == 0)  # x(0) = 0
    x1 = net["gain"] * np.tanh(net["bias"] * net["w_in"] + net["w_back"] * teacher[0])
    np.testing.assert_allclose(states[1], x1, rtol=1e-12)
    x2 = net["retain"] * x1 + net["gain"] * np.tanh(net["w"] @ x1 + net["bias"] * net["w_in"] + net["w_back"] * teacher[1])
    np.testing.assert_allclose(states[2], x2, rtol=1e-12)


# --- training ---------------------------------------------------------------------------------------------

def test_least_squares_reproduces_a_linear_target_exactly():
    rng = np.random.default_rng(5)
    a, w = rng.normal(size=(200, 40)), rng.normal(size=40)
    np.testing.assert_allclose(anchors.least_squares(a, a @ w), w, rtol=1e-9, atol=1e-12)


def test_the_readout_fits_the_teacher_in_arctanh_coordinates():
    """A teacher that the states reproduce exactly (tanh of a linear read-out of them) is fitted exactly."""
    p = tiny_protocol()
    net = anchors.network(p, 0)
    rng = np.random.default_rng(6)
    states = anchors.harvest(net, 0.3 * np.sin(np.arange(300) / 7.0))
    w_true = rng.normal(scale=0.1, size=30)
    teacher = np.tanh(states @ w_true)
    x = anchors.harvest(net, teacher)[100:]
    np.testing.assert_allclose(anchors.least_squares(x, np.arctanh(teacher[100:])) @ x.T,
                               np.arctanh(teacher[100:]), atol=1e-6)


def test_training_pieces_tile_the_sequence_as_the_report_says():
    assert anchors.pieces(21000, 6000, 1000) == [(0, 6000), (5000, 11000), (10000, 16000), (15000, 21000)]
    assert anchors.pieces(3000, 3000, 0) == [(0, 3000)]
    with pytest.raises(ValueError, match="do not tile"):
        anchors.pieces(21000, 6000, 500)


# --- testing and the two yardsticks -----------------------------------------------------------------------

def test_free_runs_side_by_side_equal_runs_one_by_one():
    p = tiny_protocol()
    net = anchors.network(p, 0)
    series = anchors.series(p["series"], 300)
    w_out, _ = anchors.train(net, series, p["training"])
    segments = anchors.trial_segments(p)
    together = anchors.free_runs(net, w_out, segments, 100, 84, "states")
    alone = np.vstack([anchors.free_runs(net, w_out, s[None], 100, 84, "states") for s in segments])
    # the same up to summation order (a matrix product of 3 columns or of 1), grown a little by the free run
    np.testing.assert_allclose(together, alone, rtol=1e-9)


def synthetic(runs=4000, steps=84, seed=7):
    """Truth (runs, steps): sines at random phases, as a stationary synthetic series seen from many starts."""
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, (runs, 1))
    return 1.0 + 0.2 * np.sin(phase + 0.3 * np.arange(1, steps + 1))


def test_nrmse84_of_a_perfect_predictor_is_0_and_of_the_mean_about_1():
    truth = synthetic()
    sigma = float(np.std(truth))
    assert anchors.nrmse_at(truth, truth, sigma) == 0.0 and anchors.nrmse_over(truth, truth, sigma) == 0.0
    mean = np.full_like(truth, truth.mean())
    assert anchors.nrmse_at(mean, truth, sigma) == pytest.approx(1.0, abs=0.05)


def test_the_error_at_step_84_is_not_the_mean_over_84_steps():
    """An error growing linearly, k * eps at step k: at step 84 it is 84 eps, while the RMS over steps 1..84
    is eps sqrt(85 * 169 / 6) = 48.9 eps; an error present only at step 1 shows in the second alone."""
    truth = synthetic(runs=10)
    sigma, eps = float(np.std(truth)), 1e-5
    growing = truth + eps * np.arange(1, 85)
    assert anchors.nrmse_at(growing, truth, sigma) == pytest.approx(84 * eps / sigma, rel=1e-6)
    assert anchors.nrmse_over(growing, truth, sigma) == pytest.approx(eps * math.sqrt(85 * 169 / 6) / sigma, rel=1e-6)
    early = truth.copy()
    early[:, 0] += eps
    assert anchors.nrmse_at(early, truth, sigma) == 0.0 < anchors.nrmse_over(early, truth, sigma)


def test_a_diverged_run_scores_inf_not_nan():
    truth = synthetic(runs=3)
    wild = truth.copy()
    wild[0] = np.inf
    assert anchors.nrmse_at(wild, truth, 0.2) == math.inf


def test_a_tiny_protocol_runs_and_is_reproducible():
    p = tiny_protocol()
    first, second = anchors.run_protocol(p), anchors.run_protocol(p)
    assert [s["nrmse84"] for s in first["seeds"]] == [s["nrmse84"] for s in second["seeds"]]
    assert first["nrmse84_worst"] >= first["nrmse84_median"] > 0
    assert first["ratio_median"] == pytest.approx(first["nrmse84_median"] / 2.8e-4)


# --- protocol files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: p.stem)
def test_the_shipped_protocol_files_validate(path):
    doc = anchors.load(path)
    assert doc["name"] == path.stem and doc["assumptions"]
    for p in doc["protocols"]:
        assert p["testing"]["horizon"] == 84 and p["paper"]["nrmse84"] > 0


def test_the_2001_file_states_the_reports_numbers():
    p3000, p21000 = anchors.load(PROTOCOL_FILES[0])["protocols"]
    assert (p3000["paper"]["nrmse84"], p21000["paper"]["nrmse84"]) == (2.8e-4, 1.2e-4)
    assert p3000["network"]["units"] == 400 and p3000["network"]["spectral_radius"] == 0.79
    assert p3000["testing"]["runs"] == 20 and p21000["training"]["piece"] == 6000


def write(tmp_path, edit):
    doc = yaml.safe_load(PROTOCOL_FILES[0].read_text())
    edit(doc)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["protocols"][0]["network"].update(units=-1), r"protocols\.0\.network\.units: -1 is less than"),
    (lambda d: d["protocols"][1]["network"].update(unitz=3), r"protocols\.1\.network: .*unitz.*allowed keys: units"),
    (lambda d: d["protocols"][0]["training"].update(readout="ridge"), r"protocols\.0\.training\.readout: 'ridge'"),
    (lambda d: d["protocols"][0]["paper"].pop("where"), r"protocols\.0\.paper: 'where' is a required property"),
    (lambda d: d["protocols"][1]["training"].update(overlap=500), r"protocols\.1\.training\.piece: .*do not tile"),
    (lambda d: d["protocols"][0]["training"].update(discard=3000), r"protocols\.0\.training\.discard: 3000 leaves"),
    (lambda d: d["protocols"][1].update(name="jaeger2001-3000"), r"protocols: the names .* repeat"),
])
def test_a_bad_protocol_file_is_refused_naming_the_key(tmp_path, edit, message):
    with pytest.raises(anchors.ProtocolError, match=message) as caught:
        anchors.load(write(tmp_path, edit))
    assert "edited.yaml" in str(caught.value)


def test_numbers_written_as_yaml_strings_are_read_as_numbers(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL_FILES[0].read_text().replace("noise: 0.0 ", "noise: 1e-8 ", 1))
    assert anchors.load(path)["protocols"][0]["training"]["noise"] == 1e-8  # PyYAML reads 1e-8 as a string


def test_the_study_config_lists_both_protocol_files_by_default_and_checks_the_key():
    assert settings.resolve({})["anchors"] == ["config/anchors/jaeger2001.yaml", "config/anchors/jaeger-haas2004.yaml"]
    assert settings.resolve({"anchors": []})["anchors"] == []
    with pytest.raises(settings.ConfigError, match=r"anchors\.0: 'notes\.txt' does not match"):
        settings.resolve({"anchors": ["notes.txt"]})


# --- the table --------------------------------------------------------------------------------------------

def test_the_table_sets_the_study_beside_the_paper():
    record = {"protocols": [{"name": "jaeger2001-3000", "protocol": {"network": {"units": 400}, "training": {"length": 3000}},
                             "paper": {"nrmse84": 2.8e-4, "where": "Report 6.4, p. 35"}, "seeds": [{}] * 5,
                             "nrmse84_median": 5.6e-4, "nrmse84_worst": math.inf, "ratio_median": 2.0}]}
    lines = anchors.table([record]).splitlines()
    assert lines[0].startswith("| protocol | units | training samples | paper's NRMSE84 |")
    assert lines[2] == ("| jaeger2001-3000 | 400 | 3000 | 2.8e-4 (Report 6.4, p. 35) | 5.6e-4 (5 seeds) | inf | 2 |")


def test_the_findings_section_names_each_files_assumptions_and_the_yardstick():
    record = {"name": "jaeger-haas2004", "source": "H. Jaeger and H. Haas, Harnessing nonlinearity, 2004",
              "assumptions": ["units as quoted", "training carried over"],
              "protocols": [{"name": "jaeger-haas2004", "protocol": {"network": {"units": 1000},
                                                                      "training": {"length": 3000}},
                             "paper": {"nrmse84": 6.3e-5, "where": "Science"}, "seeds": [{}] * 5,
                             "nrmse84_median": 1e-2, "nrmse84_worst": 150.0, "ratio_median": 159.0}]}
    text = anchors.findings_text([record])
    assert text.startswith(anchors.table([record]))
    assert ("- `config/anchors/jaeger-haas2004.yaml` (H. Jaeger and H. Haas): 2 assumptions where the source is "
            "silent or could not be read, listed in the file.") in text
    assert "the error at the 84th free-running step" in text and "`nrmse_first84_test`" in text
    assert anchors.findings_text([]) == ""
