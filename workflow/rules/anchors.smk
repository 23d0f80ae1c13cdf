# Anchors: Jaeger's NRMSE84 measured on his own published protocol (rnn/anchors.py, docs/anchors.md), one
# job per protocol file listed under `anchors:` (config/README.md; read in common.smk);
# results/anchors/<file name>.json.
wildcard_constraints:
    anchor="|".join(re.escape(a) for a in ANCHORS) or "none",


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
