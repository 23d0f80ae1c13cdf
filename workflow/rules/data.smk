rule data:
    input:
        code=code("data", "io"),
    output:
        series="results/data/series.npz",
    log:
        "logs/data.log",
    conda:
        "../envs/rnn.yaml"
    params:
        data=config["data"],
    script:
        "../../scripts/data.py"
