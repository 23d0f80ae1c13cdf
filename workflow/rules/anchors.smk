# Anchors: Jaeger's NRMSE84 measured on his own published protocol (rnn/anchors.py, docs/anchors.md), one
# job per protocol file listed under `anchors:` (config/README.md); results/anchors/<file name>.json.
from rnn import anchors as anchor_protocols


def load_anchors(paths):
    """{name: validated protocol file} of the config's `anchors` list; a bad file stops the run here."""
    found, where = {}, {}
    for path in paths:
        name = Path(path).stem
        if name in found:
            raise WorkflowError(
                f"Invalid config: anchors: {where[name]} and {path} would both write results/anchors/{name}.json"
            )
        try:
            found[name], where[name] = anchor_protocols.load(path), path
        except anchor_protocols.ProtocolError as exc:
            raise WorkflowError(f"Invalid config: anchors: {exc}") from None
    return found


ANCHORS = load_anchors(config["anchors"])


wildcard_constraints:
    anchor="|".join(re.escape(a) for a in ANCHORS) or "none",


def anchor_outputs():
    """The anchors' records, one per protocol file: part of the default target."""
    return expand("results/anchors/{anchor}.json", anchor=ANCHORS)


rule anchors:
    output:
        "results/anchors/{anchor}.json",
    log:
        "logs/anchors/{anchor}.log",
    benchmark:
        "benchmarks/anchors/{anchor}.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code("anchors", "io", script="anchors"),
        # the protocols as validated (numbers typed): what the job computes, not how the file is written
        protocols=lambda w: ANCHORS[w.anchor],
    script:
        "../../scripts/anchors.py"
