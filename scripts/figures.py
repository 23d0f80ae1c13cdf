"""Rule figures: the study-level figures (the tutorial's prediction plot, learning curves, attractor, best;
the generation question's valid times, continuations, attractors and long free runs; the ablations
around a named variant)."""
from pathlib import Path

import matplotlib.pyplot as plt

from rnn import io, plots, study

io.job_logging(snakemake.log[0])
p, out = snakemake.params, snakemake.output
seg, lyap = p.segments, io.load_lyapunov(snakemake.input.lyapunov)
first = p.series[0]  # the tutorial's view and the examples: the first series
series = {s: io.load_series(f) for s, f in zip(p.series, snakemake.input.series)}
preds = {(Path(f).parent.parent.relative_to("results/runs").as_posix(), int(Path(f).parent.name[5:])): f
         for f in snakemake.input.predictions}  # (variant, data seed) -> results/runs/<variant>/data-<seed>/...
table = io.load_csv(snakemake.input.ablation, ["data_seed", "variant", "base", "axis", "optimizer", "n_ok"])
table["value"] = table["value"].fillna("").astype(str)
pooled = study.pooled(table)
base = io.load_predictions(preds["baseline", first])
first_opt = next(iter(base["y"]))


def save(fig, path):
    io.save_figure(path, fig, dpi=110)
    plt.close(fig)


def placeholder(path, text):
    fig = plt.figure(figsize=(6, 2))
    fig.text(0.5, 0.5, text, ha="center")
    save(fig, path)


save(plots.prediction(series[first], base["y"][first_opt][:, 0], seg["train"], seg["validation"],
                      title=f"baseline, {first_opt}, seed {base['seeds'][0]}, data seed {first}: one-step predictions"),
     out.prediction)
curves = io.load_csv(snakemake.input.curves, ["optimizer", "phase", "seed", "step", "cost"])
save(plots.learning_curves(curves, title=f"baseline (the tutorial's network), data seed {first}"), out.curves)

best = study.best_variant(table) or ("baseline", first_opt)
best_pred = io.load_predictions(preds[best[0], first]) if (best[0], first) in preds else base
base_best = study.best_variant(table[table["variant"] == "baseline"]) or ("baseline", first_opt)
generated = {f"baseline, {base_best[1]}": base["continuation"][base_best[1]][:, 0],
             f"best: {best[0]}, {best[1]}": best_pred["continuation"][best[1]][:, 0]}
save(plots.attractor(series[first][: seg["train"] + seg["validation"]], generated, lag=p.tau,
                     title=f"delay embedding: true series and generated continuations (seed 0, data seed {first})"),
     out.attractor)
save(plots.continuation(series[first], {f"baseline {base_best[1]}": base["continuation"][base_best[1]],
                                        f"{best[0]} {best[1]}": best_pred["continuation"][best[1]]},
                        seg["train"], lyap, title=f"baseline against the best variant ({best[0]}, {best[1]})"),
     out.best)

# --- what makes the network generate: the three contenders, chosen on validation -------------------
runs = io.load_csv(snakemake.input.runs, ["variant", "optimizer", "status"])
picks = study.contenders(table, runs)
names = {"tutorial": "the tutorial's recipe", "rnn": "best RNN (≤ 60 units)", "reservoir": "reservoir"}
save(plots.valid_time(pooled, lyap, marked=[(r["variant"], r["optimizer"]) for r in picks.values()],
                      targets=(1.0, 2.0, 5.0)), out.valid_time)
chosen, long = {}, {}
for key, row in picks.items():
    pred = io.load_predictions(preds[row["variant"], first])
    label = f"{names[key]}: {row['variant']}, {row['optimizer']}"
    if "start" in pred:
        chosen[label] = (pred["starts"][0], pred["start"][row["optimizer"]][:, 0])
    if "longterm" in pred:
        long[names[key]] = pred["longterm"][row["optimizer"]][:, 0]
if chosen:
    start = next(iter(chosen.values()))[0]
    horizon = len(next(iter(chosen.values()))[1])
    truth = series[first][start:start + horizon, 0]
    save(plots.start_continuations(truth, {k: c for k, (_, c) in chosen.items()}, start, lyap,
                                   title=f"free-running from the first test start point (sample {start}), seed "
                                         f"{base['seeds'][0]}, data seed {first}"), out.generation_continuations)
    save(plots.attractor(truth, {k.split(":")[0]: c for k, (_, c) in chosen.items()}, lag=p.tau,
                         title="delay embedding: the test segment and each contender's continuation"),
         out.generation_attractors)
else:  # no test segment scored: say so rather than leave the figures out
    for path in (out.generation_continuations, out.generation_attractors):
        placeholder(path, "no test segment (data.test: 0)")

if long and p.longterm is not None:
    from rnn import longterm

    record = io.load_json(snakemake.input.attractor[1])
    reference = io.load_npz(snakemake.input.attractor[0], ["series"])["series"]
    settings = longterm.check_settings(p.longterm)
    scored = {k: v[settings["discard"]:settings["discard"] + settings["steps"]] for k, v in long.items()}
    spectra = {"reference": longterm.spectrum(reference, settings),
               **{k: longterm.spectrum(v, settings, longterm.FLAT * reference.std()) for k, v in scored.items()}}
    save(plots.long_runs(reference[:settings["steps"]], scored, record["lag"], spectra,
                         title=f"{settings['steps']} free-running steps after {settings['discard']} (seed "
                               f"{base['seeds'][0]}, data seed {first}) against the generator's own trajectory"),
         out.generation_longterm)
else:
    placeholder(out.generation_longterm, "no long free runs (no test segment)")

# --- the "Things to try" around a named variant -------------------------------------------------------
bases = [b for b in study.axes_by_base(pooled) if b != "baseline"]
if bases:
    import pandas as pd

    around = pd.concat([study.comparable(runs, b)[0] for b in bases])  # each base on its ablations' series
    around["value"] = around["value"].fillna("").astype(str)
    save(plots.around(around, bases), out.around)
else:
    placeholder(out.around, "no ablations around a named variant (variants.<name>.ablations)")
