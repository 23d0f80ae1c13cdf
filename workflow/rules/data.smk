rule data:
    output:
        series="results/data/series-{data_seed}.npz",
    log:
        "logs/data/series-{data_seed}.log",
    benchmark:
        "benchmarks/data/series-{data_seed}.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code("data", "io", script="data"),
        data=lambda w: config["data"]
        | {"length": settings.data_length(config["data"]), "seed": int(w.data_seed)},
    script:
        "../../scripts/data.py"


rule lyapunov:
    output:
        "results/data/lyapunov.json",
    log:
        "logs/lyapunov.log",
    benchmark:
        "benchmarks/lyapunov.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code("lyapunov", "io", script="lyapunov"),
        # only what the exponent depends on: a new data seed or length does not rerun it
        generator=config["data"]["generator"],
        tau=config["data"]["tau"],
        given=config["data"]["lyapunov"],
    script:
        "../../scripts/lyapunov.py"


rule attractor:
    output:
        reference="results/data/attractor.npz",
        record="results/data/attractor.json",
    log:
        "logs/attractor.log",
    benchmark:
        "benchmarks/attractor.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        code=code("longterm", "io", script="attractor"),
        # a long reference trajectory of the generator: it depends on no data seed
        generator=config["data"]["generator"],
        tau=config["data"]["tau"],
        longterm=LONGTERM,
    script:
        "../../scripts/attractor.py"
