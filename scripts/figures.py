"""Rule figures: the study-level figures (tutorial's prediction plot, learning curves, attractor, best)."""
from pathlib import Path

import matplotlib.pyplot as plt

from rnn import experiment, io, plots, study

io.job_logging(snakemake.log[0])
seg, lyap = snakemake.params.segments, io.load_lyapunov(snakemake.input.lyapunov)
series = io.load_series(snakemake.input.series)
preds = {Path(p).parent.name: p for p in snakemake.input.predictions}
table = io.load_csv(snakemake.input.ablation, ["variant", "optimizer", "n_ok"])
base = io.load_predictions(preds["baseline"])
first_opt = next(iter(base["y"]))


def save(fig, path):
    io.save_figure(path, fig, dpi=110)
    plt.close(fig)


save(plots.prediction(series, base["y"][first_opt][:, 0], seg["train"], seg["validation"],
                      title=f"baseline, {first_opt}, seed {base['seeds'][0]}: one-step predictions"),
     snakemake.output.prediction)
curves = io.load_csv(snakemake.input.curves, ["optimizer", "phase", "seed", "step", "cost"])
save(plots.learning_curves(curves, title="baseline (the tutorial's network)"), snakemake.output.curves)

best = study.best_variant(table) or ("baseline", first_opt)
best_pred = io.load_predictions(preds[best[0]])
base_best = study.best_variant(table[table["variant"] == "baseline"]) or ("baseline", first_opt)
generated = {f"baseline, {base_best[1]}": base["continuation"][base_best[1]][:, 0],
             f"best: {best[0]}, {best[1]}": best_pred["continuation"][best[1]][:, 0]}
save(plots.attractor(series[: seg["train"] + seg["validation"]], generated, lag=snakemake.params.tau,
                     title="delay embedding: true series and generated continuations (seed 0)"),
     snakemake.output.attractor)
save(plots.continuation(series, {f"baseline {base_best[1]}": base["continuation"][base_best[1]],
                                 f"{best[0]} {best[1]}": best_pred["continuation"][best[1]]},
                        seg["train"], lyap, title=f"baseline against the best variant ({best[0]}, {best[1]})"),
     snakemake.output.best)

# --- what makes the network generate: the three contenders, chosen on validation -------------------
runs = io.load_csv(snakemake.input.runs, ["variant", "optimizer", "status"])
picks = study.contenders(table, runs)
names = {"tutorial": "the tutorial's recipe", "rnn": "best RNN (≤ 60 units)", "reservoir": "reservoir"}
save(plots.valid_time(table, lyap, marked=[(r["variant"], r["optimizer"]) for r in picks.values()],
                      targets=(1.0, 3.0)), snakemake.output.valid_time)
chosen = {}
for key, row in picks.items():
    pred = io.load_predictions(preds[row["variant"]])
    if "start" in pred:
        chosen[f"{names[key]}: {row['variant']}, {row['optimizer']}"] = (pred["starts"][0],
                                                                         pred["start"][row["optimizer"]][:, 0])
if chosen:
    start = next(iter(chosen.values()))[0]
    horizon = len(next(iter(chosen.values()))[1])
    truth = series[start:start + horizon, 0]
    save(plots.start_continuations(truth, {k: c for k, (_, c) in chosen.items()}, start, lyap,
                                   title=f"free-running from the first test start point (sample {start}), seed "
                                         f"{base['seeds'][0]}"), snakemake.output.generation_continuations)
    save(plots.attractor(truth, {k.split(":")[0]: c for k, (_, c) in chosen.items()}, lag=snakemake.params.tau,
                         title="delay embedding: the test segment and each contender's continuation"),
         snakemake.output.generation_attractors)
else:  # no test segment scored: say so rather than leave the figures out
    for path in (snakemake.output.generation_continuations, snakemake.output.generation_attractors):
        fig = plt.figure(figsize=(6, 2))
        fig.text(0.5, 0.5, "no test segment (data.test: 0)", ha="center")
        save(fig, path)
