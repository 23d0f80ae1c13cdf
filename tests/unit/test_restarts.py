"""Restarts (several initialisations per weight seed, the best kept on validation), the initial draws
behind them, the learning-curve monitor, and compiling kept out of training time."""

import numpy as np
import pytest

from rnn import metrics
from rnn.data import mackey_glass
from rnn.experiment import choose_restarts, run_variant
from rnn.model import Spec, init_params, seed_sequence
from rnn.train import check_settings, noise_generators

GEN = {"starts": 4, "spacing": 10, "warmup": 30, "horizon": 60}


@pytest.fixture(scope="module")
def series():
    return mackey_glass(700, seed=4)[0]


def test_restart_zero_is_the_weight_seed_itself_and_other_restarts_draw_afresh():
    spec = Spec(hidden=4, init_scale_bias=0.1)
    alone, restarted = init_params(spec, [3]), init_params(spec, [(3, 0), (3, 1), (3, 2)])
    assert seed_sequence(3, 0) == seed_sequence((3, 0), 0) == [3, 0] and seed_sequence((3, 2), 1) == [3, 1, 2]
    for name, value in alone.items():
        assert np.array_equal(restarted[name][0], value[0]), name
        if name != "b_o":  # the read-out bias starts at zero for every draw
            assert not np.array_equal(restarted[name][1], restarted[name][2]), name
    first = noise_generators([3, (3, 1)], stream=2)
    assert first[0].normal() == np.random.default_rng([3, 2]).normal()
    assert first[1].normal() == np.random.default_rng([3, 2, 1]).normal()


def test_the_bias_scale_draws_hidden_biases_after_every_weight():
    plain, biased = init_params(Spec(hidden=6), [0, 1]), init_params(Spec(hidden=6, init_scale_bias=0.5), [0, 1])
    assert all(np.array_equal(plain[n], biased[n]) for n in plain if n != "b_h")
    assert not plain["b_h"].any() and 0.2 < biased["b_h"].std() < 1.0
    with pytest.raises(ValueError, match="init_scale_bias: .*(minimum of 0|finite number|not of type)"):
        Spec(init_scale_bias=-1.0)


def test_choose_restarts_keeps_the_validation_best_never_the_test_best():
    """Seed 0: restart 1 is best on validation and worst on the test segment; restart 2 the reverse.
    The choice sees only validation: restart 1 is kept. Seed 1: a tie on validation valid time (both
    reached the segment's end) goes to the lower validation NRMSE; seed 2: diverged restarts (NaN)
    lose to any finite one."""
    vpt_val = np.array([100, 300, 50,   250, 250, 10,   np.nan, 5, np.nan])
    nrmse_val = np.array([0.1, 0.1, 0.1, 2e-3, 1e-3, 0.5, np.nan, 1.0, np.nan])
    vpt_test = np.array([200, 10, 900, 1, 2, 3, 4, 5, 6])  # never read: choose_restarts takes no test score
    kept = choose_restarts(vpt_val, nrmse_val, 3)
    assert list(kept) == [1, 4, 7]
    assert vpt_test[kept[0]] == vpt_test[0:3].min()  # the test would have chosen otherwise
    assert list(choose_restarts(np.full(4, np.nan), np.full(4, np.nan), 2)) == [0, 2]  # all diverged: the first


def test_run_variant_keeps_each_seeds_best_restart_on_validation(series):
    settings = {"hidden": 4, "init_scale_rec": 0.5, "init_scale_in": 0.5, "l2": 0.0, "rollout_steps": 4,
                "washout": 20, "bfgs_maxiter": 10, "epochs": 20}
    kwargs = dict(seeds=[0, 1], optimizers=["sgd", "lbfgs"], train=300, validation=100, horizon=200,
                  generation=GEN, lyapunov=1 / 164, log_every=5)
    three = run_variant(series, {**settings, "restarts": 3}, **kwargs)
    ones = {r: run_variant(series, {**settings, "restarts": 1}, **kwargs) for r in (0,)}  # restart 0 alone
    rows = {(r["optimizer"], r["seed"]): r for r in three["rows"]}
    assert sorted(rows) == [("lbfgs", 0), ("lbfgs", 1), ("sgd", 0), ("sgd", 1)]
    for (opt, seed), row in rows.items():
        assert row["restart"] in (0, 1, 2)
        if row["restart"] == 0:  # the same model as without restarts (stacked with others: to rounding)
            alone = next(r for r in ones[0]["rows"] if (r["optimizer"], r["seed"]) == (opt, seed))
            assert row["val_mse"] == pytest.approx(alone["val_mse"], rel=1e-8)
    # the kept parameters are the chosen restart's, its continuation the one scored
    assert three["params"]["lbfgs"]["w_hh"].shape == (2, 4, 4)
    assert three["y"]["sgd"].shape == (len(series), 2) and three["test"]["lbfgs"].shape == (60, 4, 2)
    curves = {(c["optimizer"], c["phase"], c["seed"]) for c in three["curves"]}
    assert curves == {("sgd", "sgd", 0), ("sgd", "sgd", 1), ("lbfgs", "bfgs", 0), ("lbfgs", "bfgs", 1)}
    # a restarted seed's training time counts all its restarts: three models' worth per seed
    assert all(r["train_seconds"] > 0 for r in three["rows"])


def test_restarts_must_be_a_small_positive_integer():
    for bad in (0, 17, 1.5, True):
        with pytest.raises(ValueError, match="restarts: .*(minimum of 1|maximum of 16|not of type)"):
            check_settings(restarts=bad)


def test_the_monitor_sees_exactly_the_teacher_forced_predictions(compiled_model, series):
    """The learning curves' monitor runs a one-step graph over train + validation only; its predictions
    are those of the full teacher-forced pass it replaced, to rounding (XLA may sum the read-out of a
    shorter series in another order: the curves' last bits may move, training's numbers do not)."""
    spec, K = Spec(hidden=5), 2
    params = init_params(spec, [0, 1])
    compiled = compiled_model(spec, K, 300, length=len(series), horizon=50)
    y_full, _ = compiled.generate(series, params)
    y_seen = compiled.one_step(np.ascontiguousarray(series[:400]), params)
    np.testing.assert_allclose(y_seen, y_full[:400], rtol=1e-12, atol=1e-300)
    assert metrics.one_step_mse(y_seen[:, 1], series, 300, 400) == pytest.approx(
        metrics.one_step_mse(y_full[:, 1], series, 300, 400), rel=1e-12)


def test_compiling_is_timed_apart_from_training(series):
    out = run_variant(series, {"hidden": 4, "epochs": 10, "bfgs_maxiter": 5}, seeds=[0], optimizers=["sgd+bfgs"],
                      train=300, validation=100, horizon=50, log_every=5)
    timing = out["timing"]
    assert set(timing) == {"compile_seconds", "train_seconds", "evaluate_seconds"}
    # everything training calls was compiled before it: 10 epochs and 5 iterations of a 4-unit model
    # take a small fraction of a compile
    assert timing["train_seconds"] < timing["compile_seconds"]
