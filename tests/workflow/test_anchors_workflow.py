"""The rule anchors through the real Snakemake CLI: a tiny protocol file to its record, and a bad one refused."""

import json

import yaml

from helpers import REPO, TINY, copy_repo, ok, snakemake
from rnn import anchors


def tiny_file(root, **network):
    """config/anchors/tiny.yaml in the copy at ``root``: one 30-unit protocol, 2 seeds, 3 trials."""
    doc = yaml.safe_load((REPO / "config/anchors/jaeger2001.yaml").read_text())
    p = doc["protocols"][0]
    p["name"] = "tiny-300"
    p["network"].update(units=30, connectivity=0.2, **network)
    p["training"].update(length=300, piece=300, discard=100)
    p["testing"].update(runs=3, teacher=100)
    p["seeds"] = [0, 1]
    doc["protocols"] = [p]
    (root / "config/anchors/tiny.yaml").write_text(yaml.safe_dump(doc))


def test_a_protocol_file_runs_to_its_record(tmp_path):
    root = copy_repo(tmp_path / "repo", {**TINY, "anchors": ["config/anchors/tiny.yaml"]})
    tiny_file(root)
    ok(root, "--cores", "1", "results/anchors/tiny.json")
    record = json.loads((root / "results/anchors/tiny.json").read_text())
    (result,) = record["protocols"]
    assert record["name"] == "tiny" and result["name"] == "tiny-300" and len(result["seeds"]) == 2
    assert result["nrmse84_median"] > 0 and result["paper"]["nrmse84"] == 2.8e-4
    assert "| tiny-300 | 30 | 300 | 2.8e-4" in anchors.table([record])
    assert (root / "benchmarks/anchors/tiny.tsv").is_file() and (root / "logs/anchors/tiny.log").is_file()


def test_a_bad_protocol_file_stops_the_run_naming_the_key(tmp_path):
    root = copy_repo(tmp_path / "repo", {**TINY, "anchors": ["config/anchors/tiny.yaml"]})
    tiny_file(root, spectral_radius=-0.8)
    rc, out = snakemake(root, "-n", "results/anchors/tiny.json")
    assert rc != 0 and "config/anchors/tiny.yaml: protocols.0.network.spectral_radius: -0.8" in out, out[-3000:]
