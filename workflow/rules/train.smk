rule train:
    input:
        series="results/data/series-{data_seed}.npz",
        lyapunov=rules.lyapunov.output[0],
        attractor=attractor_files,
    output:
        metrics="results/runs/{variant}/data-{data_seed}/metrics.csv",
        curves="results/runs/{variant}/data-{data_seed}/curves.csv",
        params="results/runs/{variant}/data-{data_seed}/params.npz",
        predictions="results/runs/{variant}/data-{data_seed}/predictions.npz",
    log:
        "logs/train/{variant}/data-{data_seed}.log",
    benchmark:
        "benchmarks/train/{variant}/data-{data_seed}.tsv"
    conda:
        "../envs/rnn.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=code("experiment", "io", script="train"),
        # everything run_variant is given but the files: canonical (rnn.settings.resolve)
        arguments=lambda w: settings.train_arguments(config, w.variant, VARIANTS),
    script:
        "../../scripts/train.py"
