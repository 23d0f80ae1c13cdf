rule summary:
    input:
        runs=rules.aggregate.output.runs,
        ablation=rules.aggregate.output.ablation,
        markdown=rules.aggregate.output.markdown,
        lyapunov=rules.lyapunov.output[0],
        attractor=attractor_files,
        benchmarks=[f"benchmarks/train/{v}/data-{s}.tsv" for v, s in JOBS],
        figures=[
            *expand("results/figures/ablation/{axis}.png", axis=AXES),
            *rules.figures.output,
        ],
        code=code("study", "findings", "labels", "plots", "io"),
    output:
        md=report(
            "results/summary.md",
            caption="../report/summary.rst",
            category="Study",
        ),
        html="results/summary.html",
    log:
        "logs/summary.log",
    benchmark:
        "benchmarks/summary.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        config={k: v for k, v in config.items() if k != "ablations"},
        n_variants=len(VARIANTS),
        n_jobs=len(JOBS),
    script:
        "../../scripts/summary.py"
