"""The study's pages in a real browser (headless Chromium, ``browser.py``): a planted page shows that a missing
image and a page error are caught; the static summary of a rendered planted study loads every figure. The
Snakemake report of a real tiny study is opened by ``test_workflow.py`` (it needs that finished study)."""

import planted
from browser import page_problems
from rnn import findings, plots, settings, study


def _figure(path):
    fig = plots.valid_time(planted.runs(), study.contenders(planted.table(planted.runs()), planted.runs()),
                           planted.LYAPUNOV, planted.HORIZON)
    plots.save(path, fig)


def test_a_missing_image_and_a_page_error_are_caught(tmp_path):
    _figure(tmp_path / "valid_time.png")
    page = tmp_path / "page.html"
    page.write_text(findings.html_page("# A page\n\n![valid_time](valid_time.png)\n\n![gone](gone.png)\n", "a page")
                    .replace("</body>", "<script>throw new Error('planted');</script></body>"))
    problems = page_problems(page, min_images=2)
    assert any("image did not load: gone.png" in p for p in problems), problems
    assert any("planted" in p for p in problems), problems
    assert not any("valid_time.png" in p for p in problems), problems


def test_the_findings_page_shows_every_figure(tmp_path):
    runs = planted.runs()
    table = planted.table(runs)
    (tmp_path / "figures").mkdir()
    _figure(tmp_path / "figures/valid_time.png")
    plots.save(tmp_path / "figures/around.png", plots.around(runs, study.contenders(table, runs), planted.FLOORS,
                                                             "recipe"))
    text = findings.findings_markdown(table, runs, dict(settings.BASELINE), planted.LYAPUNOV,
                                      {"valid_time": "figures/valid_time.png", "around": "figures/around.png"},
                                      planted.FLOORS, {"valid_time": "the caption"})
    page = tmp_path / "findings.html"
    page.write_text(findings.html_page(text, "findings"))
    assert page_problems(page, min_images=2) == []
    assert "<em>the caption</em>" in page.read_text() and "<table>" in page.read_text()
