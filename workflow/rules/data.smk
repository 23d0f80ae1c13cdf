rule data:
    input:
        code=code("data", "io"),
    output:
        series="results/data/series-{data_seed}.npz",
    log:
        "logs/data/series-{data_seed}.log",
    benchmark:
        "benchmarks/data/series-{data_seed}.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        data=lambda w: config["data"]
        | {"length": study.data_length(config["data"]), "seed": int(w.data_seed)},
    script:
        "../../scripts/data.py"


rule lyapunov:
    input:
        code=code("lyapunov", "io"),
    output:
        "results/data/lyapunov.json",
    log:
        "logs/lyapunov.log",
    benchmark:
        "benchmarks/lyapunov.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        # only what the exponent depends on: a new data seed or length does not rerun it
        generator=config["data"]["generator"],
        tau=config["data"]["tau"],
        given=config["data"]["lyapunov"],
    script:
        "../../scripts/lyapunov.py"


rule attractor:
    input:
        code=code("longterm", "io"),
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
        # a long reference trajectory of the generator: it depends on no data seed
        generator=config["data"]["generator"],
        tau=config["data"]["tau"],
        longterm=LONGTERM,
    script:
        "../../scripts/attractor.py"
