"""The findings published in README.md are the ones the workflow wrote to results/published/, and they follow
the published tables."""

import re

from helpers import REPO, is_png
from rnn.findings import BEGIN, END, block_of
from test_findings import contradictions


def test_readme_findings_block_is_the_published_one():
    readme = (REPO / "README.md").read_text()
    published = (REPO / "results/published/findings.md").read_text()
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, "README.md lacks the generated findings block"
    block = readme[readme.index(BEGIN):readme.index(END) + len(END)]
    assert block.replace("results/published/", "") == block_of(published), (
        "README.md's findings differ from results/published/findings.md: run `snakemake --cores 4 publish`")


def test_every_published_figure_is_committed_and_shown():
    published = REPO / "results/published"
    links = re.findall(r"\]\((figures/[^)]+\.png)\)", (published / "findings.md").read_text())
    assert len(links) >= 3
    for link in links:
        assert is_png(published / link), link
    assert {p.name for p in (published / "figures").glob("*.png")} == {link[len("figures/"):] for link in links}


def test_the_published_findings_contradict_none_of_their_intervals():
    assert contradictions((REPO / "results/published/findings.md").read_text()) == []
