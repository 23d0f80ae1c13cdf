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
    params:
        variants={n: {"axis": v["axis"], "value": v["value"]} for n, v in VARIANTS.items()},
        backend=config["backend"],
    log:
        "logs/aggregate.log",
    script:
        "../../scripts/aggregate.py"
