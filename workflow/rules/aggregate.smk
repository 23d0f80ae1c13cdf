rule aggregate:
    input:
        metrics=variant_files("metrics.csv"),
        code=code("study", "io"),
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
        variants={
            n: {"axis": v["axis"], "value": v["value"], "settings": v["settings"]}
            for n, v in VARIANTS.items()
        },
        backend=config["backend"],
    script:
        "../../scripts/aggregate.py"
