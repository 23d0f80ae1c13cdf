rule data:
    input:
        code=code("data", "io"),
    output:
        series="results/data/series.npz",
    params:
        data=config["data"],
    log:
        "logs/data.log",
    script:
        "../../scripts/data.py"
