"""Rule plot_ablation: what one Thing to try does to the tutorial's network and to the generating recipe (one-step
error and valid time, every run a dot), each on the series its variants share."""

from rnn import io, plots

io.job_logging(snakemake.log[0])
runs = io.load_csv(snakemake.input.runs, ["variant", "base", "axis", "value", "optimizer", "status", "seed"])
runs["value"] = runs["value"].fillna("").astype(str)
fig = plots.ablation(runs, snakemake.wildcards.axis, io.load_lyapunov(snakemake.input.lyapunov), plots.recipe_of(runs))
plots.save(snakemake.output[0], fig)  # and what a reader would trip on, in the log
