rule aggregate:
    input:
        metrics=run_files("metrics.csv"),
    output:
        runs=report(
            "results/tables/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
        ),
        ablation=report(
            "results/tables/ablation.csv",
            caption="../report/ablation.rst",
            category="Tables",
        ),
        markdown="results/tables/ablation.md",
    log:
        "logs/aggregate.log",
    benchmark:
        "benchmarks/aggregate.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code("study", "io", script="aggregate"),
        variants={
            n: {k: v[k] for k in ("axis", "value", "base", "settings")}
            for n, v in VARIANTS.items()
        },
        backend=config["backend"],
    script:
        "../../scripts/aggregate.py"
