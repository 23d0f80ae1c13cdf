"""The benchmark command runs end to end and checks gradients; it asserts no timing (that is its report's job)."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rnn import reference
from rnn.data import mackey_glass
from rnn.compiled import Compiled
from rnn.model import Spec, init_params


def test_reference_bptt_matches_the_model_gradient():
    x = mackey_glass(121, seed=3)[0][:120]
    spec = Spec(hidden=5)
    params = init_params(spec, [7])
    cost, _, grads = Compiled(spec, 1, 120, 120, 1, "jax").loss_and_grad(x, params)
    ref_cost, ref_grads = reference.loss_and_grad(x, *(params[n][0] for n in reference.NAMES), spec.l2)
    assert ref_cost == pytest.approx(cost[0], rel=1e-12)
    for name, g in zip(reference.NAMES, ref_grads):
        np.testing.assert_allclose(grads[name][0], g, rtol=1e-9, atol=1e-15)


def test_benchmark_command_writes_table_markdown_and_figure(tmp_path):
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "rnn.benchmark", "--backends", "jax", "--stack", "1", "2", "--repeats", "2",
           "--max-epochs", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(out / "benchmark.csv")
    assert list(table["implementation"]) == ["reference (Numba BPTT)", "pytensor jax", "pytensor jax"]
    assert list(table["K"]) == [1, 1, 2]
    jax_rows = table[table["backend"] == "jax"]
    assert (jax_rows["grad_max_rel_diff_vs_reference"] < 1e-10).all()
    assert np.isfinite(jax_rows["cold_compile_seconds"]).all() and (jax_rows["cold_compile_seconds"] > 0).all()
    assert table.loc[0, "ratio_to_reference"] == 1.0
    text = (out / "benchmark.md").read_text()
    assert "| target (jax) |" in text and "single (K=1)" in text and "stacked (K>=8)" not in text
    # the closed-loop objective: the project, plain JAX and the floor, agreeing on the loss and gradient
    closed = pd.read_csv(out / "closed_loop.csv")
    assert len(closed) == 3 * 2 and set(closed["hidden"]) == {15, 30}
    project = closed[closed["implementation"].str.contains("the project")]
    assert (project["max_rel_diff_vs_plain_jax"] < 1e-10).all()
    plain = closed[closed["implementation"].str.startswith("plain JAX")]
    assert (plain["ratio_to_plain_jax"] == 1.0).all() and (closed["ms"] > 0).all()
    assert "## The closed-loop objective" in text and "| closed-loop-30 (H=30) |" in text
    assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the study's own SGD record against the reference's 1001 epochs, compiling apart
    study = pd.read_csv(out / "study.csv")
    assert list(study["K"]) == [1, 1, 8] and study.loc[0, "ratio_to_reference"] == 1.0
    assert (study["train_seconds_per_model"] > 0).all() and (study.loc[1:, "compile_seconds"] > 0).all()
    assert np.allclose(study["ratio_to_reference"], study["train_seconds_per_model"] / study.loc[0, "train_seconds_per_model"])
    assert "## The study's SGD training" in text and "| 8 |" in text and "≤ 0.5" in text


def test_closed_loop_flops_count_the_products():
    """Per free-running step and start point 3 recurrent products (2H^2 each) and 4 vector terms (2H each);
    per teacher-forced step 3 products: at closed-loop-30's sizes about 1.1 GFLOP, as the issue counted."""
    from rnn.benchmark import closed_loop_flops

    assert closed_loop_flops(H=2, K=1, T=10, steps=3, N=4) == (3 - 1) * 4 * (6 * 4 + 8 * 2) + 10 * 6 * 4
    assert closed_loop_flops(30, 5, 1500, 128, 318) == pytest.approx(1.13e9, rel=0.05)


def test_benchmark_command_refuses_bad_arguments(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rnn.benchmark", "--backends", "cuda", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--backends" in proc.stderr and "'c', 'jax', 'numba'" in proc.stderr
    assert not any(tmp_path.iterdir())
