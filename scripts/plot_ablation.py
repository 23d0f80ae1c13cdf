"""Rule plot_ablation: effect of one ablation axis on the key metrics, mean and 95% CI."""
from rnn import io, plots, study

io.job_logging(snakemake.log[0])
table = io.load_csv(snakemake.input.ablation, ["data_seed", "variant", "base", "axis", "value", "optimizer"])
table["value"] = table["value"].fillna("").astype(str)
table = study.pooled(table)
table = table[table["base"] == "baseline"]  # the baseline's axes; ablations around a named variant: figures.py
axis = snakemake.wildcards.axis
fig = plots.ablation_effects(table, axis, snakemake.params.baseline[axis])
io.save_figure(snakemake.output[0], fig, dpi=110)
