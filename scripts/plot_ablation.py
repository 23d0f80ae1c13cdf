"""Rule plot_ablation: what one Thing to try does to the tutorial's network and to the generating recipe (one-step
error and valid time, every run a dot), each on the series its variants share."""
import logging

from rnn import io, plots

io.job_logging(snakemake.log[0])
runs = io.load_csv(snakemake.input.runs, ["variant", "base", "axis", "value", "optimizer", "status", "seed"])
runs["value"] = runs["value"].fillna("").astype(str)
fig = plots.ablation(runs, snakemake.wildcards.axis, io.load_lyapunov(snakemake.input.lyapunov), plots.recipe_of(runs))
for problem in plots.problems(fig):
    logging.warning("%s: %s", snakemake.output[0], problem)
plots.save(snakemake.output[0], fig)
