# Not part of the default study: `snakemake --cores 2 bench` (it takes the whole machine so that
# timings are not disturbed by other jobs: all of --cores; a cluster executor has no such total,
# so there it takes the profile's set-threads, or 2). `snakemake --report results/report.html all
# bench` then puts its table and figure in the report.
BENCH = config.get("benchmark", {})


rule bench:
    output:
        table=report(
            "results/benchmark/benchmark.csv",
            caption="../report/benchmark.rst",
            category="Benchmark",
        ),
        markdown="results/benchmark/benchmark.md",
        figure=report(
            "results/benchmark/benchmark.png",
            caption="../report/benchmark.rst",
            category="Benchmark",
        ),
    log:
        "logs/bench.log",
    benchmark:
        "benchmarks/bench.tsv"
    conda:
        "../envs/rnn.yaml"
    threads: workflow.resource_settings.cores or 2
    params:
        code=code("benchmark", "reference", "train", "plots"),
        backends=" ".join(BENCH.get("backends", ["c", "jax", "numba"])),
        stack=" ".join(map(str, BENCH.get("stack", [1, 8, 64]))),
        repeats=BENCH.get("repeats", 5),
        max_epochs=BENCH.get("max_epochs", 200),
        default=config["backend"],
        python=sys.executable,
    # without the jobs' malloc tunables (common.smk): with them its timings vary from run to run (rnn/backends.py)
    shell:
        "env -u GLIBC_TUNABLES OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "
        "{params.python} -m rnn.benchmark --backends {params.backends} --stack {params.stack} "
        "--repeats {params.repeats} --max-epochs {params.max_epochs} "
        "--default-backend {params.default} --out results/benchmark > {log} 2>&1"
