"""Rule plot_ablation: effect of one ablation axis on the key metrics, mean and 95% CI."""
from rnn import io, plots

io.job_logging(snakemake.log[0])
table = io.load_csv(snakemake.input.ablation, ["variant", "axis", "value", "optimizer"])
table["value"] = table["value"].fillna("").astype(str)
axis = snakemake.wildcards.axis
fig = plots.ablation_effects(table, axis, snakemake.params.baseline[axis])
io.save_figure(snakemake.output[0], fig, dpi=110)
