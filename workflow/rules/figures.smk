# One figure of each kind per variant, on its first series (data seed).
rule plot_variant:
    input:
        series=primary("results/data/series-{data_seed}.npz"),
        lyapunov=rules.lyapunov.output[0],
        curves=primary("results/runs/{variant}/data-{data_seed}/curves.csv"),
        predictions=primary("results/runs/{variant}/data-{data_seed}/predictions.npz"),
        metrics=primary("results/runs/{variant}/data-{data_seed}/metrics.csv"),
    output:
        continuation=report(
            "results/figures/continuations/{variant}.png",
            caption="../report/continuation.rst",
            category="Continuations",
            labels={"variant": "{variant}"},
        ),
        curves=report(
            "results/figures/curves/{variant}.png",
            caption="../report/curves.rst",
            category="Learning curves",
            labels={"variant": "{variant}"},
        ),
    log:
        "logs/plot_variant/{variant}.log",
    benchmark:
        "benchmarks/plot_variant/{variant}.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code("plots", "labels", "experiment", "io", script="plot_variant"),
        segments=SEGMENTS,
        data_seed=lambda w: VARIANTS[w.variant]["data_seeds"][0],
    script:
        "../../scripts/plot_variant.py"


rule plot_ablation:
    input:
        runs=rules.aggregate.output.runs,
        lyapunov=rules.lyapunov.output[0],
    output:
        report(
            "results/figures/ablation/{axis}.png",
            caption="../report/ablation_effects.rst",
            category="Ablation effects",
            labels={"axis": "{axis}"},
        ),
    log:
        "logs/plot_ablation/{axis}.log",
    benchmark:
        "benchmarks/plot_ablation/{axis}.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code("plots", "labels", "study", "io", script="plot_ablation"),
    script:
        "../../scripts/plot_ablation.py"


rule figures:
    input:
        series=expand(rules.data.output.series, data_seed=SERIES),
        lyapunov=rules.lyapunov.output[0],
        attractor=attractor_files,
        ablation=rules.aggregate.output.ablation,
        runs=rules.aggregate.output.runs,
        predictions=run_files("predictions.npz"),
        curves=f"results/runs/baseline/data-{SERIES[0]}/curves.csv",
    output:
        prediction=report(
            "results/figures/prediction.png",
            caption="../report/prediction.rst",
            category="Study",
        ),
        curves=report(
            "results/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Study",
        ),
        attractor=report(
            "results/figures/attractor.png",
            caption="../report/attractor.rst",
            category="Study",
        ),
        best=report(
            "results/figures/continuation_best.png",
            caption="../report/continuation_best.rst",
            category="Study",
        ),
        valid_time=report(
            "results/figures/valid_time.png",
            caption="../report/valid_time.rst",
            category="Generation",
        ),
        generation_continuations=report(
            "results/figures/generation_continuations.png",
            caption="../report/generation_continuations.rst",
            category="Generation",
        ),
        generation_attractors=report(
            "results/figures/generation_attractors.png",
            caption="../report/generation_attractors.rst",
            category="Generation",
        ),
        generation_longterm=report(
            "results/figures/generation_longterm.png",
            caption="../report/generation_longterm.rst",
            category="Generation",
        ),
        around=report(
            "results/figures/around.png",
            caption="../report/around.rst",
            category="Generation",
        ),
        exponents=report(
            "results/figures/exponents.png",
            caption="../report/exponents.rst",
            category="Generation",
        ),
    log:
        "logs/figures.log",
    benchmark:
        "benchmarks/figures.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code(
            "plots",
            "labels",
            "experiment",
            "study",
            "longterm",
            "io",
            script="figures",
        ),
        segments=SEGMENTS,
        tau=config["data"]["tau"],
        series=SERIES,
        longterm=LONGTERM,
        generation=GENERATION,
    script:
        "../../scripts/figures.py"
