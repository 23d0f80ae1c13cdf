"""Generation from many start points: the graph against a NumPy transcription, the start points and
their truths, valid time over start points on synthetic cases, and run_variant's test and validation scores."""

import numpy as np
import pytest

from rnn import metrics
from rnn.data import mackey_glass
from rnn.experiment import check_generation, run_variant, starts_in_test, starts_in_validation
from rnn.generation import start_points, truths, warmup_inputs
from rnn.model import Spec

from numpy_model import np_free_run, np_teacher_forced, random_params, rel_err

GEN = {"starts": 4, "spacing": 7, "warmup": 15, "horizon": 30}


@pytest.fixture(scope="module")
def series():
    return mackey_glass(400, seed=2)[0]


@pytest.mark.parametrize("spec", [Spec(hidden=4), Spec(hidden=4, nonlinearity="relu", skip=True), Spec(hidden=26)],
                         ids=["tanh", "relu_skip", "wide"])
def test_continuations_from_start_points_match_numpy(compiled_model, series, spec):
    K, warmup, horizon = 2, 15, 30
    params = random_params(spec, K, seed=5, scale=0.4 * min(1.0, np.sqrt(4 / spec.hidden)))
    starts = start_points(100, 4, 7)
    cont = compiled_model(spec, K, 50).generate_from(warmup_inputs(series, starts, warmup), params, horizon)
    assert cont.shape == (horizon, 4, K)
    for j, a in enumerate(starts):
        for k in range(K):
            q = {n: v[k] for n, v in params.items()}
            hs, ys = np_teacher_forced(spec, series[a - warmup:a], q)  # from h = 0 over the warm-up
            want = np.concatenate([[ys[-1]], np_free_run(spec, q, ys[-1], hs[-1], horizon - 1)])
            assert rel_err(cont[:, j, k], want) < 1e-10


def test_start_points_warmups_and_truths_line_up(series):
    starts = start_points(60, 3, 10)
    assert starts.tolist() == [60, 70, 80]
    xw, truth = warmup_inputs(series, starts, 5), truths(series, starts, 4)
    assert xw.shape == (5, 3) and truth.shape == (4, 3)
    assert xw[-1, 1] == series[69, 0] and xw[0, 1] == series[65, 0]  # the samples just before the start
    assert truth[0, 2] == series[80, 0]  # the first generated value predicts the sample at the start
    with pytest.raises(ValueError, match="no room for a warm-up"):
        warmup_inputs(series, [3], 5)
    with pytest.raises(ValueError, match="runs past the series"):
        truths(series, [398], 5)


def test_valid_time_over_start_points_on_synthetic_continuations():
    horizon, std = 50, 1.0
    truth = np.zeros((horizon, 5))
    cont = np.zeros((horizon, 5))
    for s, leave in enumerate([3, 10, 20, 40, horizon]):  # the step at which each start point's error jumps
        cont[leave:, s] = 1.0
    assert metrics.valid_times(cont, truth, std).tolist() == [3, 10, 20, 40, horizon]
    scores = metrics.score_starts(cont, truth, std, lyapunov=0.01)
    assert scores["vpt_steps_test"] == 20 and scores["vpt_lyapunov_test"] == pytest.approx(0.2)
    assert scores["n_starts"] == 5
    # NRMSE over the first 84 steps (here all 50), averaged over start points
    want = np.mean([np.sqrt((horizon - leave) / horizon) for leave in [3, 10, 20, 40, horizon]])
    assert scores["nrmse_first84_test"] == pytest.approx(want)
    assert scores["censored_test"] == pytest.approx(1 / 5)  # the last start point keeps the whole horizon
    assert np.isnan(scores["nrmse_at84_test"])  # no step 84 in 50 steps
    cont[5, 0] = np.nan  # an overflowing continuation is invalid from there on
    assert metrics.valid_times(cont, truth, std)[0] == 3
    cont[:, 1] = np.inf
    assert metrics.valid_times(cont, truth, std)[1] == 0 and np.isnan(metrics.score_starts(cont, truth, std)["nrmse_first84_test"])
    with pytest.raises(ValueError, match="must both be"):
        metrics.valid_times(cont[:, :2], truth, std)


def test_error_at_step_84_is_not_the_error_over_the_first_84_steps():
    """Jaeger's NRMSE84 is the error at step 84 (row 83), RMS over start points: an error growing
    exponentially is larger there than its RMS over steps 1-84."""
    steps, std = 120, 2.0
    truth = np.zeros((steps, 3))
    growth = 1e-4 * np.exp(0.05 * np.arange(steps))[:, None] * np.array([1.0, 2.0, -3.0])
    cont = truth + growth
    at = metrics.nrmse_at(cont, truth, std)
    assert at == pytest.approx(1e-4 * np.exp(0.05 * 83) * np.sqrt((1 + 4 + 9) / 3) / std)
    scores = metrics.score_starts(cont, truth, std)
    assert scores["nrmse_at84_test"] == at
    assert scores["nrmse_first84_test"] < at / 2
    assert scores["censored_test"] == 1.0  # an error of 0.2 std at most: every start point keeps 120 steps
    assert metrics.nrmse_at(cont, truth, std, step=1) == pytest.approx(1e-4 * np.sqrt(14 / 3) / std)
    cont[83, 1] = np.inf
    assert np.isnan(metrics.nrmse_at(cont, truth, std))
    assert np.isnan(metrics.nrmse_at(cont[:83], truth[:83], std))


def test_run_variant_scores_test_and_validation_start_points(series):
    settings = {"hidden": 4, "epochs": 5, "bfgs_maxiter": 5}
    train, validation = 200, 60
    out = run_variant(series, settings, seeds=[0, 1], optimizers=["sgd", "lbfgs"], train=train,
                      validation=validation, horizon=100, generation=GEN, lyapunov=0.01)
    starts = starts_in_test(GEN, train, validation)
    assert starts.tolist() == [275, 282, 289, 296]  # the first leaves its warm-up inside the test segment
    assert starts_in_validation(GEN, train, validation).tolist() == [200, 207, 214, 221, 228]
    for row in out["rows"]:
        assert row["n_starts"] == 4 and 0 <= row["vpt_steps_test"] <= GEN["horizon"]
        assert row["vpt_lyapunov_test"] == pytest.approx(row["vpt_steps_test"] * 0.01)
        assert 0 <= row["vpt_steps_val"] <= validation  # censored at the validation segment's end
    # the validation NRMSE over the 32 steps every validation start point has (260 - 228), by hand
    val = starts_in_validation(GEN, train, validation)
    runs = out["params"]["lbfgs"]
    from rnn.compiled import Compiled
    from rnn.model import Spec

    compiled = Compiled(Spec(hidden=4), 2, train, len(series), 100)
    val_cont = compiled.generate_from(warmup_inputs(series, val, GEN["warmup"]), runs, 32)
    truth = truths(series, val, 32)
    for k, row in enumerate(r for r in out["rows"] if r["optimizer"] == "lbfgs"):
        want = np.mean(np.sqrt(np.mean((val_cont[:, :, k] - truth) ** 2, axis=0))) / series.std()
        assert row["nrmse_val"] == pytest.approx(want, rel=1e-9)
    cont = out["test"]["lbfgs"]
    assert cont.shape == (GEN["horizon"], 4, 2)
    std = float(series.std())
    for k, row in enumerate(r for r in out["rows"] if r["optimizer"] == "lbfgs"):
        want = metrics.score_starts(cont[:, :, k], truths(series, starts, GEN["horizon"]), std, 0.01)
        assert row["vpt_steps_test"] == want["vpt_steps_test"]
        assert out["vpt_starts"]["lbfgs"][:, k].tolist() == metrics.valid_times(
            cont[:, :, k], truths(series, starts, GEN["horizon"]), std).tolist()


@pytest.mark.parametrize("gen, message", [
    ({**GEN, "starts": 0}, r"generation.starts: .*(minimum of 1|not of type)"),
    ({**GEN, "warmup": -1}, r"generation.warmup: .*(minimum of 0|not of type)"),
    ({**GEN, "horizon": 200}, r"warmup \+ spacing \* \(starts - 1\) \+ horizon \(15 \+ 7 \* 3 \+ 200 = 236\) must be <= the "
                              r"test segment"),
    ({**GEN, "warmup": 250}, r"generation.warmup \(250\) must be <= train \(200\)"),
    ({**GEN, "start": 3}, r"generation: .*'start' was unexpected.*allowed keys: starts, spacing"),
])
def test_check_generation_names_what_does_not_fit(gen, message):
    with pytest.raises(ValueError, match=message):
        check_generation(gen, 200, 60, 400)
