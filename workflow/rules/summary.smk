rule summary:
    input:
        runs=rules.aggregate.output.runs,
        ablation=rules.aggregate.output.ablation,
        markdown=rules.aggregate.output.markdown,
        lyapunov=rules.lyapunov.output[0],
        attractor=attractor_files,
        figures=[
            *expand("results/figures/ablation/{axis}.png", axis=AXES),
            *rules.figures.output,
        ],
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
        code=code("study", "findings", "labels", "plots", "io", script="summary"),
        config={k: v for k, v in config.items() if k != "ablations"},
        n_variants=len(VARIANTS),
        n_jobs=len(JOBS),
        # the training jobs' own records, read where present but not inputs: deleting one must not
        # retrain its job (a record only its job can write); the summary says how many it lacks
        benchmarks=[f"benchmarks/train/{v}/data-{s}.tsv" for v, s in JOBS],
    script:
        "../../scripts/summary.py"
