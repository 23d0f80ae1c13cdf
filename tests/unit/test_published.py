"""The findings published in README.md are the ones the workflow wrote to results/published/."""

import re

from helpers import REPO, is_png
from rnn.findings import BEGIN, END


def test_readme_findings_block_is_the_published_one():
    readme = (REPO / "README.md").read_text()
    published = REPO / "results/published/findings.md"
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, "README.md lacks the generated findings block"
    block = readme[readme.index(BEGIN):readme.index(END) + len(END)]
    assert block.replace("results/published/figures/", "figures/") == published.read_text().strip(), (
        "README.md's findings differ from results/published/findings.md: run `snakemake --cores 4 publish`")


def test_every_published_figure_is_committed_and_shown():
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\((results/published/figures/[^)]+\.png)\)", readme)
    assert len(links) >= 3
    for link in links:
        assert is_png(REPO / link), link
