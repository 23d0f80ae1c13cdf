"""The study's figures are legible: rendered from small planted tables, no two texts overlap, nothing is cut at
the canvas edge, no text is a raw column name, every interval stays in its metric's range, and the caption's
numbers are the ones drawn. Each check is shown to fail on a planted fault."""

import re

import numpy as np
import pytest

import planted
from rnn import labels, plots, study


@pytest.fixture(scope="module")
def tables():
    runs = planted.runs()
    return runs, planted.table(runs)


@pytest.fixture(scope="module")
def figures(tables):
    runs, table = tables
    picks = study.contenders(table, runs)
    recipe = plots.recipe_of(runs)
    figs = {"valid_time": plots.valid_time(runs, picks, planted.LYAPUNOV, planted.HORIZON, 10),
            "around": plots.around(runs, picks, planted.FLOORS, recipe),
            "exponents": plots.exponents(runs, picks, (0.01, 0.0097, 0.0103), recipe, planted.HORIZON)}
    for axis in ("hidden", "skip"):
        figs[f"ablation_{axis}"] = plots.ablation(runs, axis, planted.LYAPUNOV, recipe)
    t = np.arange(1200)
    series = np.sin(t / 7.0) + 0.3 * np.sin(t / 2.3)
    figs["prediction"] = plots.prediction(series, np.roll(series, -1) + 1e-3 * np.cos(t), 700, 300,
                                          title="How close is the one-step prediction?")
    runs_long = {"the tutorial's recipe": np.full(800, -0.06), "best RNN": series[:800]}
    figs["longterm"] = plots.long_runs(series, runs_long, 17, {"reference": None},
                                       title="Where does a long free run end up?")
    return figs


def test_the_planted_study_has_the_contenders_and_the_recipe(tables):
    runs, table = tables
    picks = study.contenders(table, runs)
    assert {k: r["variant"] for k, r in picks.items()} == {"tutorial": "baseline", "rnn": "recipe",
                                                            "reservoir": "reservoir"}
    assert plots.recipe_of(runs) == "recipe"


@pytest.mark.parametrize("name", ["valid_time", "around", "exponents", "ablation_hidden", "ablation_skip",
                                  "prediction", "longterm"])
def test_each_figure_is_legible(figures, name):
    assert plots.problems(figures[name]) == []


def test_titles_ask_a_question_and_axes_speak_words(figures):
    for name in ("valid_time", "around", "exponents", "ablation_hidden", "ablation_skip"):
        fig = figures[name]
        assert "?" in fig._suptitle.get_text(), name
        for ax in fig.axes:
            for text in (ax.get_xlabel(), ax.get_ylabel()):
                assert "_" not in text or "D_stsp" in text or "D_H" in text, (name, text)
    assert figures["valid_time"].axes[-1].get_xlabel() == labels.axis_label("vpt_lyapunov_test")


def test_a_planted_overlap_is_caught(figures, tables):
    runs, table = tables
    fig = plots.valid_time(runs, study.contenders(table, runs), planted.LYAPUNOV, planted.HORIZON)
    ax = fig.axes[0]
    ax.text(0.0, 1.02, ax.get_title(loc="left"), transform=ax.transAxes, fontsize=9)  # over the panel's title
    assert any("overlapping text" in p for p in plots.problems(fig))


def test_a_planted_raw_label_and_a_cut_text_are_caught(tables):
    runs, table = tables
    fig = plots.ablation(runs, "hidden", planted.LYAPUNOV, "recipe")
    fig.axes[0].set_ylabel("vpt_steps_test")
    fig.text(0.97, 0.5, "a sentence that runs off the right edge of the canvas")
    found = plots.problems(fig)
    assert any("raw name 'vpt_steps_test'" in p for p in found)
    assert any("cut at the edge" in p for p in found)


def test_intervals_stay_in_the_metric_range_and_a_planted_one_is_caught(figures):
    for name, fig in figures.items():
        for metric, lo, hi in fig.drawn["intervals"]:
            m = labels.METRICS[metric]
            assert m.low <= lo <= hi <= m.high, (name, metric, lo, hi)
    fig = figures["ablation_hidden"]
    fig.drawn["intervals"].append(("vpt_lyapunov_test", -0.2, 1.0))  # a Student-t interval of a count would do this
    try:
        assert any("leaves [0.0, inf]" in p for p in plots.problems(fig))
    finally:
        fig.drawn["intervals"].pop()


def test_the_caption_says_what_is_drawn(figures, tables):
    runs, table = tables
    fig = figures["valid_time"]
    for key, name in labels.CONTENDERS.items():
        group = fig.drawn["groups"][f"{key}/all series"]
        m = re.search(re.escape(name[0].upper() + name[1:]) + r": (\d+) runs \((\d+) seeds × (\d+) series\), "
                      r"median (\S+) \(95% CI (\S+) to (\S+)\)", fig.caption)
        assert m, (name, fig.caption)
        assert int(m[1]) == int(m[2]) * int(m[3]) == group["n"]
        assert (m[4], m[5], m[6]) == tuple(study.fmt(group[k]) for k in ("median", "low", "high"))
        dots = sum(len(a.get_offsets()) for a in fig.findobj(lambda a: a.get_gid() == f"runs:{key}/all series"))
        assert dots == group["n"]
    assert "15 censored" not in fig.caption and "6 censored" in fig.caption  # the reservoir reaches the horizon
    fig.drawn["groups"]["rnn/all series"]["n"] += 1  # a caption that claims a run more than is drawn
    try:
        assert any("dots drawn" in p for p in plots.problems(fig))
    finally:
        fig.drawn["groups"]["rnn/all series"]["n"] -= 1


def test_diverged_runs_are_counted_where_they_are_not_drawn(figures):
    fig = figures["ablation_skip"]
    ticks = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert "true\n2 of 3\ndiverged" in ticks
    assert "1 of 3 diverged" not in fig.caption and "2 diverged in training (not drawn)" in fig.caption
    around = figures["around"]
    assert any("(2 of 3 diverged)" in t.get_text() for ax in around.axes for t in ax.get_yticklabels())


def test_a_collapse_is_labelled_as_a_collapse(figures):
    fig = figures["longterm"]
    titles = [ax.get_title() for ax in fig.axes]
    assert any("collapsed to x = -0.06" in t for t in titles) and "collapsed to a fixed point" in fig.caption


def test_floor_and_ceilings_are_drawn_and_named(figures):
    fig = figures["around"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.FLOOR + " (range)" in legend
    assert {f"ceiling: {c}" for c in labels.CEILINGS.values()} <= set(legend)


def test_the_caption_travels_in_the_png(tmp_path, figures):
    path = tmp_path / "valid_time.png"
    caption = figures["valid_time"].caption
    plots.save(path, figures["valid_time"])
    assert plots.caption_of(path) == caption and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bootstrap_intervals_are_seeded_and_inside_the_values():
    values = [0.0, 0.0, 1.0, 2.0, 5.0]
    first = labels.bootstrap_median(values)
    assert first == labels.bootstrap_median(values) and 0.0 <= first[1] <= first[0] <= first[2] <= 5.0
    d, lo, hi = labels.bootstrap_difference([1.0, 1.1, 0.9], [3.0, 3.2, 2.9])
    assert 1.8 < d < 2.2 and 0 < lo <= hi


def test_without_a_generating_recipe_the_ablation_is_one_legible_column(tables):
    runs, _ = tables
    alone = runs[~runs["base"].isin(["recipe"])]
    fig = plots.ablation(alone, "skip", planted.LYAPUNOV, plots.recipe_of(alone))
    assert plots.recipe_of(alone) is None and len(fig.axes) == 2
    assert plots.problems(fig) == []


def test_the_attractor_caption_counts_runs_per_row(figures, tables):
    caption = figures["around"].caption
    assert "best RNN (≤ 60 units), 6 runs (3 seeds × 2 series)" in caption
    assert "hidden units 30, 3 runs (3 seeds × 1 series)" in caption


def test_the_exponents_figure_draws_every_run_beside_the_datas_band(figures, tables):
    runs, _ = tables
    fig = figures["exponents"]
    groups = {k.split("/", 1)[1]: g for k, g in fig.drawn["groups"].items() if k.startswith("exponent/")}
    reservoir = groups[labels.CONTENDERS["reservoir"]]
    assert reservoir["n"] == 6 and reservoir["median"] == pytest.approx(np.median(0.0099 + 0.0001 * np.arange(3)))
    assert groups["around recipe: " + plots.variant_label("recipe/skip-true", "skip", "true", "recipe")]["n"] == 1
    assert "2 without an exponent (diverged)" in fig.caption and f"95% CI {study.fmt(0.0097)} to {study.fmt(0.0103)}" in fig.caption
    # the right panel: one dot per run with an exponent, the censored reservoir's as hollow triangles
    scatter = fig.axes[1]
    dots = sum(len(c.get_offsets()) for c in scatter.collections if str(c.get_gid()).startswith("runs:scatter/"))
    assert dots == int(np.isfinite(runs.loc[runs["variant"].isin(["baseline", "recipe", "reservoir"])
                                             | (runs["base"] == "recipe"), "lyapunov_model"]).sum()) - 6
