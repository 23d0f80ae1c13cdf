"""Rule plot_variant: one variant's continuations against the truth, and its learning curves (its first series)."""
import matplotlib.pyplot as plt

from rnn import io, plots

io.job_logging(snakemake.log[0])
name, seg = snakemake.wildcards.variant, snakemake.params.segments
where = f"data seed {snakemake.params.data_seed}"
series = io.load_series(snakemake.input.series)
pred = io.load_predictions(snakemake.input.predictions)
runs = io.load_csv(snakemake.input.metrics, ["optimizer", "seed", "status"])
diverged = {opt: [((runs["optimizer"] == opt) & (runs["seed"] == s) & (runs["status"] == "diverged")).any()
                  for s in pred["seeds"]] for opt in pred["continuation"]}
fig = plots.continuation(series, pred["continuation"], seg["train"], io.load_lyapunov(snakemake.input.lyapunov),
                         title=f"{name} ({where}): free-running continuation after {seg['train']} teacher-forced samples",
                         diverged=diverged)
io.save_figure(snakemake.output.continuation, fig, dpi=110)
plt.close(fig)
curves = io.load_csv(snakemake.input.curves, ["optimizer", "phase", "seed", "step", "cost"])
fig = plots.learning_curves(curves, title=f"{name} ({where}): learning curves")
io.save_figure(snakemake.output.curves, fig, dpi=110)
