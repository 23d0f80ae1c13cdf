"""rnn.data: the tutorial's Mackey-Glass number for number, and the seeded MSO / Lorenz generators."""

import numpy as np
import pytest

from rnn import data


def reference_mackey_glass(sample_len, tau=17, seed=None, n_samples=1):
    """A plain transcription of the tutorial's algorithm: Python lists and floats only."""
    rng = np.random.RandomState(seed)
    x = 1.2
    samples = []
    for _ in range(n_samples):
        history = [1.2 + 0.2 * (u - 0.5) for u in rng.rand(tau * 10)]
        out = []
        for _ in range(sample_len):
            for _ in range(10):
                x_tau = history.pop(0)
                history.append(x)
                x = x + (0.2 * x_tau / (1 + x_tau**10) - 0.1 * x) / 10
            out.append(x)
        samples.append(np.tanh(np.array(out) - 1).tolist())  # NumPy's tanh, as the tutorial
    return samples


def test_mackey_glass_matches_the_tutorials_numbers():
    (series,) = data.mackey_glass(2000, seed=0)
    assert series.shape == (2000, 1) and series.dtype == np.float64
    assert series[:3, 0].tolist() == [0.11300372762612858, 0.03975955779349018, -0.028852344901939674]
    assert series.min() == -0.5263824349936134
    assert series.max() == 0.3092347747951773


@pytest.mark.parametrize("seed, tau, sample_len, n_samples", [
    (0, 17, 300, 1),
    (1, 17, 200, 1),
    (12345, 17, 150, 1),
    (7, 30, 200, 1),
    (3, 17, 120, 3),
    (5, 30, 80, 3),
])
def test_mackey_glass_matches_an_independent_transcription(seed, tau, sample_len, n_samples):
    samples = data.mackey_glass(sample_len, tau=tau, seed=seed, n_samples=n_samples)
    expected = reference_mackey_glass(sample_len, tau=tau, seed=seed, n_samples=n_samples)
    assert len(samples) == n_samples
    for got, want in zip(samples, expected):
        assert got.shape == (sample_len, 1) and got.dtype == np.float64
        assert got[:, 0].tolist() == want  # exact, not approximate
    if n_samples > 1:  # each sample draws a fresh history and x carries over: samples differ
        assert not np.array_equal(samples[0], samples[1])


def test_mackey_glass_samples_continue_the_random_stream():
    """Sample 0 of a 3-sample call equals the 1-sample call; later samples differ from a fresh start."""
    one = data.mackey_glass(100, seed=4)[0]
    three = data.mackey_glass(100, seed=4, n_samples=3)
    assert np.array_equal(three[0], one)
    assert not np.array_equal(three[1], one)


@pytest.mark.parametrize("make", [
    lambda: data.mackey_glass(50, seed=0),
    lambda: data.mackey_glass(50, seed=None),
    lambda: data.mso(50, seed=0),
    lambda: data.lorenz(50, seed=0),
    lambda: data.generate("mackey_glass", 50, seed=3),
], ids=["mackey_glass", "mackey_glass_unseeded", "mso", "lorenz", "generate"])
def test_generators_leave_the_global_random_state_alone(make):
    np.random.seed(2024)
    before = np.random.get_state()
    make()
    after = np.random.get_state()
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.parametrize("name, fn", [("mso", data.mso), ("lorenz", data.lorenz),
                                      ("mackey_glass", data.mackey_glass)])
def test_generators_are_seeded_shaped_and_finite(name, fn):
    a = fn(300, seed=1)
    b = fn(300, seed=1)
    c = fn(300, seed=2)
    assert len(a) == 1
    assert a[0].shape == (300, 1) and a[0].dtype == np.float64
    assert np.all(np.isfinite(a[0]))
    assert np.array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])
    assert np.abs(a[0]).max() <= 1.0 + 1e-12  # all three are scaled into [-1, 1]
    assert a[0].std() > 0.01  # not a constant
    generated = data.generate(name, 300, seed=1)
    assert generated.shape == (300, 1) and np.array_equal(generated, a[0])


@pytest.mark.parametrize("fn", [data.mso, data.lorenz])
def test_mso_and_lorenz_n_samples(fn):
    samples = fn(100, seed=0, n_samples=2)
    assert len(samples) == 2
    assert all(s.shape == (100, 1) for s in samples)
    assert not np.allclose(samples[0], samples[1])


def test_generate_rejects_an_unknown_generator_and_names_the_choices():
    with pytest.raises(ValueError, match=r"generator.*mackey_glass, mso, lorenz.*'henon'"):
        data.generate("henon", 100)


@pytest.mark.parametrize("kwargs, name", [
    ({"sample_len": 0}, "sample_len"), ({"sample_len": 2.5}, "sample_len"),
    ({"n_samples": 0}, "n_samples"), ({"tau": 0}, "tau"),
])
def test_mackey_glass_rejects_bad_sizes(kwargs, name):
    args = {"sample_len": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        data.mackey_glass(**args)
