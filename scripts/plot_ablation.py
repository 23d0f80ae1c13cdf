"""Rule plot_ablation: effect of one ablation axis on the key metrics, mean and 95% CI (the baseline on the
series the axes ran on)."""
from rnn import io, plots, study

io.job_logging(snakemake.log[0])
runs = io.load_csv(snakemake.input.runs, ["variant", "base", "axis", "value", "optimizer", "status"])
table, _ = study.comparable(runs, "baseline")  # the baseline's axes; ablations around a named variant: figures.py
table["value"] = table["value"].fillna("").astype(str)
axis = snakemake.wildcards.axis
fig = plots.ablation_effects(table, axis, snakemake.params.baseline[axis])
io.save_figure(snakemake.output[0], fig, dpi=110)
