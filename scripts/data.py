"""Rule data: generate one series (one data seed)."""
from rnn import data, io

io.job_logging(snakemake.log[0])
cfg = snakemake.params.data
series = data.generate(cfg["generator"], cfg["length"], tau=cfg["tau"], seed=cfg["seed"])
io.save_npz(snakemake.output.series, series=series)
