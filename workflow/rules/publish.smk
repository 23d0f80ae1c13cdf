# Not part of the default study: `snakemake --cores 4 publish` copies the figures the findings show
# and the tables behind them to results/published/ (committed), with the resolved config, the measured
# Lyapunov exponent and a record of the software and machine that produced them; writes the findings
# there (every word generated from the tables, each figure with the caption saved in it), and splices
# their headline block into README.md between its findings markers. README.md is not declared as an
# output because Snakemake deletes a job's outputs before running it.
# results/figures/<key>.png -> results/published/figures/<value>.png
PUBLISHED_FIGURES = {f"ablation/{axis}": f"ablation_{axis}" for axis in AXES}
STUDY_FIGURES = [
    "learning_curves",
    "prediction",
    "continuation_best",
    "attractor",
    "valid_time",
    "generation_continuations",
    "generation_attractors",
    "generation_longterm",
    "around",
    "exponents",
]
PUBLISHED_FIGURES |= {name: name for name in STUDY_FIGURES}


rule publish:
    input:
        runs=rules.aggregate.output.runs,
        lyapunov=rules.lyapunov.output[0],
        attractor=attractor_files,
        ablation=rules.aggregate.output.ablation,
        figures=expand("results/figures/{name}.png", name=PUBLISHED_FIGURES),
        anchors=anchor_outputs(),
    output:
        findings="results/published/findings.md",
        figures=expand(
            "results/published/figures/{name}.png", name=PUBLISHED_FIGURES.values()
        ),
        runs="results/published/tables/runs.csv",
        ablation="results/published/tables/ablation.csv",
        lyapunov="results/published/lyapunov.json",
        config="results/published/config.yaml",
        attractor=(["results/published/attractor.json"] if LONGTERM else []),
        environment="results/published/environment.json",
        anchors=expand("results/published/anchors/{anchor}.json", anchor=ANCHORS),
    log:
        "logs/publish.log",
    benchmark:
        "benchmarks/publish.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code(
            "findings",
            "labels",
            "plots",
            "provenance",
            "io",
            "anchors",
            script="publish",
        ),
        baseline=VARIANTS["baseline"]["settings"],
        config=config,
        readme="README.md",
    script:
        "../../scripts/publish.py"
