rule train:
    input:
        series="results/data/series-{data_seed}.npz",
        lyapunov=rules.lyapunov.output[0],
        attractor=attractor_files,
        code=code("experiment", "io"),
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
        settings=lambda w: VARIANTS[w.variant]["settings"],
        seeds=config["seeds"],
        optimizers=lambda w: VARIANTS[w.variant]["optimizers"],
        backend=config["backend"],
        segments=SEGMENTS,
        generation=GENERATION,
        longterm=LONGTERM,
        curve_every=config["curve_every"],
    script:
        "../../scripts/train.py"
