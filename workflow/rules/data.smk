rule data:
    input:
        code=code("data", "io"),
    output:
        series="results/data/series.npz",
    log:
        "logs/data.log",
    benchmark:
        "benchmarks/data.tsv"
    conda:
        "../envs/rnn.yaml"
    params:
        data=config["data"] | {"length": study.data_length(config["data"])},
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
