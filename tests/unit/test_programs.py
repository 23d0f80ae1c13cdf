"""rnn.programs: the persistent cache of lowered JAX programs gives the numbers PyTensor's functions give."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rnn import model, programs
from rnn.compiled import Compiled
from rnn.data import mackey_glass
from rnn.model import Spec, init_params

# Every kind of function a training job compiles, for a one-step and a closed-loop spec with noise inputs
_EVERY_KIND = (
    "import sys, numpy as np\n"
    "from rnn.compiled import Compiled\nfrom rnn.model import Spec, init_params\nfrom rnn.data import mackey_glass\n"
    "s = mackey_glass(700, seed=0)[0]; x = np.ascontiguousarray(s[:500]); out = {}\n"
    "for name, spec in [('one', Spec(hidden=6, skip=True)),\n"
    "                   ('loop', Spec(hidden=5, rollout_steps=4, rollout_stride=8, input_noise=0.01, weight_noise=0.01))]:\n"
    "    K = 2; p = init_params(spec, range(K)); c = Compiled(spec, K, 500, 700, 40)\n"
    "    rng = np.random.default_rng(1); noise = {n: rng.normal(0, 0.01, z.shape) for n, z in c._zero_noise.items()}\n"
    "    cost, mse, g = c.loss_and_grad(x, p, noise)\n"
    "    out.update({f'{name}_cost': cost, **{f'{name}_g_{n}': v for n, v in g.items()}})\n"
    "    q, limit, frozen, costs = c.sgd_epochs(x, p, 0.3, np.full(K, np.inf), np.zeros(K, bool), np.ones(3, bool),\n"
    "                                           np.array([True, False, False]))\n"
    "    out.update({f'{name}_sgd_{n}': v for n, v in q.items()}, **{f'{name}_sgd_cost': costs, f'{name}_limit': limit})\n"
    "    y, cont = c.generate(s, p); out.update({f'{name}_y': y, f'{name}_cont': cont})\n"
    "    out[f'{name}_starts'] = c.generate_from(np.ascontiguousarray(np.stack([s[100:130, 0], s[300:330, 0]], 1)), p, 25)\n"
    "    out[f'{name}_states'] = c.states(x, p); out[f'{name}_monitor'] = c.one_step(x[:300], p)\n"
    "np.savez(sys.argv[1], **out)\n")


def _every_kind(tmp_path, run, cache):
    """The numbers of ``_EVERY_KIND`` from a fresh process with the program cache in ``cache`` ("" = off)."""
    env = dict(os.environ, RNN_PROGRAM_CACHE_DIR=str(cache), JAX_COMPILATION_CACHE_DIR=str(tmp_path / "xla"))
    path = tmp_path / f"{run}.npz"
    subprocess.run([sys.executable, "-c", _EVERY_KIND, str(path)], env=env, check=True, capture_output=True)
    return np.load(path)


def test_a_program_from_the_cache_gives_the_bits_pytensor_gives(tmp_path):
    """Without the cache (PyTensor's functions), building and storing the programs, then loading them in a
    fresh process: every loss, gradient, SGD step, prediction, continuation and state is bitwise the same,
    and the third process builds nothing."""
    cache = tmp_path / "programs"
    plain = _every_kind(tmp_path, "plain", "")
    built = _every_kind(tmp_path, "built", cache)
    stored = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.jax")}
    assert len(stored) == 12, sorted(stored)  # 6 kinds of function x 2 specs
    loaded = _every_kind(tmp_path, "loaded", cache)
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.jax")} == stored  # nothing rebuilt or rewritten
    assert sorted(plain.files) == sorted(built.files) == sorted(loaded.files)
    for key in plain.files:
        assert np.array_equal(plain[key], built[key]) and np.array_equal(plain[key], loaded[key]), key


def _train():
    """A 200-sample training segment (200, 1)."""
    return np.ascontiguousarray(mackey_glass(300, seed=0)[0][:200])


def _loss(spec, x, K=2):
    c = Compiled(spec, K, len(x), len(x), 1)
    cost, mse, g = c.loss_and_grad(x, init_params(spec, range(K)))
    return c._functions[("loss", spec.rollout_steps)], cost, g


def _program_text(path):
    """A stored program's StableHLO without its source locations (variable names, counters: not the program)."""
    from jax import export

    text = export.deserialize(bytearray(path.read_bytes())).mlir_module()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("#loc"))
    return re.sub(r"\s*loc\((?:[^()]|\([^()]*\))*\)", "", text)


def test_the_initial_scales_leave_every_program_unchanged(tmp_path, monkeypatch):
    """The key leaves out ``model.INIT_FIELDS`` because no graph reads them: two specs that differ in all of
    them store the same programs under the same names."""
    x = _train()
    base = dict(hidden=4, rollout_steps=3, rollout_stride=10)
    other = dict(base, init_scale_in=0.5, init_scale_rec=0.3, init_scale_out=0.2, init_scale_bias=0.1,
                 spectral_radius=0.9)
    assert set(model.INIT_FIELDS) == {k for k in other if k not in base}
    stored = []
    for i, settings in enumerate((base, other)):
        monkeypatch.setenv(programs.ENV, str(tmp_path / str(i)))
        _loss(Spec(**settings), x)
        c = Compiled(Spec(**settings), 2, 200, 300, 30)
        c.generate(mackey_glass(300, seed=0)[0], init_params(Spec(**settings), range(2)))
        stored.append({p.name: _program_text(p) for p in (tmp_path / str(i)).glob("*.jax")})
    assert len(stored[0]) == 2 and stored[0] == stored[1]


def _running_programs(spec, folder, monkeypatch):
    """{file name: program text} of the four graphs that run a trained ``spec`` network, stored in ``folder``."""
    monkeypatch.setenv(programs.ENV, str(folder))
    s = mackey_glass(300, seed=0)[0]
    c, p = Compiled(spec, 2, 200, 300, 30), init_params(spec, range(2))
    c.generate(s, p)
    c.one_step(np.ascontiguousarray(s[:100]), p)
    c.generate_from(np.ascontiguousarray(np.stack([s[100:130, 0], s[150:180, 0]], 1)), p, 20)
    c.states(np.ascontiguousarray(s[:100]), p)
    return {f.name: _program_text(f) for f in folder.glob("*.jax")}


def test_the_graphs_that_run_a_trained_network_read_its_architecture_only(tmp_path, monkeypatch):
    """Predictions, continuations, free runs and states are keyed by hidden, nonlinearity and skip: a spec
    that differs in every training setting (penalties, noise, horizon, forcing, washout) stores the same four
    programs under the same names, so the variants of one architecture compile them once; a change of
    architecture keys new ones."""
    base = Spec(hidden=4)
    trained_otherwise = Spec(hidden=4, l1=1e-5, l2=1e-3, weight_noise=0.01, input_noise=0.01, rollout_steps=3,
                             rollout_stride=10, rollout_forcing=0.2, washout=20)
    assert set(programs.architecture_fields(base)) == set(programs.ARCHITECTURE)
    first = _running_programs(base, tmp_path / "base", monkeypatch)
    assert len(first) == 4
    assert _running_programs(trained_otherwise, tmp_path / "other", monkeypatch) == first
    for i, changed in enumerate([Spec(hidden=5), Spec(hidden=4, skip=True), Spec(hidden=4, nonlinearity="relu")]):
        assert not set(_running_programs(changed, tmp_path / f"arch{i}", monkeypatch)) & set(first), changed


def test_the_key_holds_every_field_a_graph_may_read():
    spec = Spec(hidden=4)
    what = {"graph": ("loss", 1), "K": 2, "train": 200}
    same = programs.key({**what, "spec": programs.graph_fields(spec)})
    assert programs.key({**what, "spec": programs.graph_fields(Spec(hidden=4, init_scale_rec=0.7))}) == same
    for field, value in [("hidden", 5), ("l2", 0.0), ("l1", 1e-5), ("skip", True), ("nonlinearity", "relu"),
                         ("weight_noise", 0.01), ("input_noise", 0.01), ("rollout_steps", 2), ("washout", 50)]:
        changed = programs.key({**what, "spec": programs.graph_fields(Spec(**{"hidden": 4, field: value}))})
        assert changed != same, field
    assert programs.key({**what, "K": 3, "spec": programs.graph_fields(spec)}) != same
    assert set(programs.graph_fields(spec)) == set(spec.to_dict()) - set(model.INIT_FIELDS)


def test_one_training_program_serves_every_penalty_and_noise_level(tmp_path, monkeypatch):
    """L1, L2 and the noise levels are inputs of the training graphs, not constants (``programs.RUNTIME``):
    four specs that differ only in them store one closed-loop loss program, and each value acts as it should:
    the gradient moves by exactly 2 l2 p + l1 sign(p) and the cost by the penalty."""
    monkeypatch.setenv(programs.ENV, str(tmp_path))
    x, K = _train(), 2
    base = dict(hidden=4, rollout_steps=3, rollout_stride=10, l1=0.0, l2=0.0)
    assert set(programs.training_fields(Spec(**base))) == set(programs.graph_fields(Spec(**base))) - set(programs.RUNTIME)
    params = init_params(Spec(**base), range(K))
    plain = Compiled(Spec(**base), K, len(x), len(x), 1).loss_and_grad(x, params)
    for settings in (dict(l2=1e-3), dict(l1=1e-4, l2=2e-5), dict(l1=3e-4, weight_noise=0.01, input_noise=0.02)):
        settings = {**base, **settings}
        cost, mse, grads = Compiled(Spec(**settings), K, len(x), len(x), 1).loss_and_grad(x, params)
        l1, l2 = settings["l1"], settings["l2"]
        np.testing.assert_array_equal(mse, plain[1])  # no noise passed: the same loss
        np.testing.assert_allclose(cost - mse, model.penalty(Spec(**settings), params), rtol=1e-12)
        for n, g in grads.items():
            np.testing.assert_allclose(g - plain[2][n], 2 * l2 * params[n] + l1 * np.sign(params[n]),
                                       rtol=1e-9, atol=1e-15)
    assert len(list(tmp_path.glob("*.jax"))) == 1
    changed = Compiled(Spec(**base, washout=20), K, len(x), len(x), 1)
    changed.loss_and_grad(x, params)
    assert len(list(tmp_path.glob("*.jax"))) == 2  # a setting the graph is built from keys its own program


def test_a_job_waits_for_the_program_another_is_building_then_loads_it(tmp_path, monkeypatch):
    """Jobs that start together build each program once: while one holds a program's build lock, another
    that needs the program waits instead of building it too, then loads what the first stored."""
    import threading

    import rnn.compiled

    spec, s = Spec(hidden=4), mackey_glass(300, seed=0)[0]
    params = init_params(spec, range(2))
    monkeypatch.setenv(programs.ENV, "")  # the first job's PyTensor function, built without the cache
    first = Compiled(spec, 2, 200, 300, 30)
    want = first.generate(s, params)
    monkeypatch.setenv(programs.ENV, str(tmp_path))
    second = Compiled(spec, 2, 200, 300, 30)
    name = second._program_name("generate", training=False)
    builds, got = [], []
    real = rnn.compiled.pytensor.function
    monkeypatch.setattr(rnn.compiled.pytensor, "function", lambda *a, **k: builds.append(1) or real(*a, **k))
    with programs.building(tmp_path, name):  # the first job is building it
        waiting = threading.Thread(target=lambda: got.append(second.generate(s, params)))
        waiting.start()
        waiting.join(timeout=3)
        assert waiting.is_alive() and not got  # it waits for the lock
        programs.save(tmp_path, name, first._functions["generate"])  # the first job stores its program
    waiting.join(timeout=120)
    assert not waiting.is_alive() and not builds  # it loaded the stored program, built nothing
    for a, b in zip(got[0], want):
        np.testing.assert_array_equal(a, b)


def test_the_key_follows_the_source_of_the_modules_that_build_graphs():
    """An edit to a module the graphs are built with changes every key; the plots, tables and benchmark do not."""
    from rnn import provenance

    built_with = {p.rsplit("/", 1)[1] for p in provenance.module_sources(["compiled"])}
    assert {"compiled.py", "model.py", "rollout.py", "generation.py", "backends.py"} <= built_with
    assert not built_with & {"plots.py", "verify.py", "benchmark.py", "experiment.py"}


def test_an_unreadable_program_is_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(programs.ENV, str(tmp_path))
    x = _train()
    spec = Spec(hidden=3)
    _, cost, g = _loss(spec, x)
    [entry] = tmp_path.glob("*.jax")
    entry.write_bytes(b"torn")
    _, again, g_again = _loss(spec, x)
    assert "ignoring unreadable cached program" in caplog.text
    assert np.array_equal(cost, again) and all(np.array_equal(g[n], g_again[n]) for n in g)
    assert entry.stat().st_size > 100  # written anew
    _, third, _ = _loss(spec, x)  # and readable
    assert np.array_equal(cost, third)


def test_a_cache_folder_that_cannot_be_written_only_costs_time(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv(programs.ENV, str(blocker / "programs"))
    x = _train()
    fn, cost, _ = _loss(Spec(hidden=3), x)
    monkeypatch.setenv(programs.ENV, "")
    _, plain, _ = _loss(Spec(hidden=3), x)
    assert "not caching program" in caplog.text and hasattr(fn, "maker")  # PyTensor's function, kept
    assert np.array_equal(cost, plain)


@pytest.mark.parametrize("backend", ["c", "jax"])
def test_the_cache_is_off_with_an_empty_folder_and_on_other_backends(tmp_path, monkeypatch, backend):
    monkeypatch.setenv(programs.ENV, "" if backend == "jax" else str(tmp_path))
    x = _train()
    spec = Spec(hidden=3)
    c = Compiled(spec, 1, 200, 200, 1, backend=backend)
    c.loss_and_grad(x, init_params(spec, range(1)))
    assert hasattr(c._functions[("loss", 1)], "maker")  # PyTensor's own function
    assert not any(tmp_path.iterdir())
