rule train:
    input:
        series=rules.data.output.series,
        lyapunov=rules.lyapunov.output[0],
        code=code("experiment", "io"),
    output:
        metrics="results/runs/{variant}/metrics.csv",
        curves="results/runs/{variant}/curves.csv",
        params="results/runs/{variant}/params.npz",
        predictions="results/runs/{variant}/predictions.npz",
    log:
        "logs/train/{variant}.log",
    benchmark:
        "benchmarks/train/{variant}.tsv"
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
        curve_every=config["curve_every"],
    script:
        "../../scripts/train.py"
