"""Rule figures: the study-level figures (the tutorial's prediction plot, learning curves, attractor, best;
the generation question's valid times, continuations, attractors and long free runs; whether long runs stay
on the attractor). Each is saved with its caption (``rnn.plots.save``)."""
import logging
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
    plots.save(path, fig)  # and what a reader would trip on, in the log


def placeholder(path, text):
    fig = plt.figure(figsize=(6, 2))
    fig.text(0.5, 0.5, text, ha="center")
    save(fig, path)


save(plots.prediction(series[first], base["y"][first_opt][:, 0], seg["train"], seg["validation"],
                      title=f"How close is the tutorial's one-step prediction? ({plots.L.optimizer(first_opt)}, "
                            f"seed {base['seeds'][0]}, series {first})"),
     out.prediction)
curves = io.load_csv(snakemake.input.curves, ["optimizer", "phase", "seed", "step", "cost"])
save(plots.learning_curves(curves, title=f"How does the tutorial's network train? (series {first})"), out.curves)

best = study.best_variant(table) or ("baseline", first_opt)
best_pred = io.load_predictions(preds[best[0], first]) if (best[0], first) in preds else base
base_best = study.best_variant(table[table["variant"] == "baseline"]) or ("baseline", first_opt)
opt = plots.L.optimizer
tutorial, chosen_best = f"the tutorial's network, {opt(base_best[1])}", f"{best[0]}, {opt(best[1])}"
generated = {tutorial: base["continuation"][base_best[1]][:, 0],
             f"longest after training: {chosen_best}": best_pred["continuation"][best[1]][:, 0]}
save(plots.attractor(series[first][: seg["train"] + seg["validation"]], generated, lag=p.tau,
                     title=f"Does a continuation after the training segment keep the attractor's shape? (seed "
                           f"{base['seeds'][0]}, series {first})"),
     out.attractor)
save(plots.continuation(series[first], {tutorial: base["continuation"][base_best[1]],
                                        chosen_best: best_pred["continuation"][best[1]]},
                        seg["train"], lyap, title=f"How long does {chosen_best} follow the series after the "
                                                  f"training segment? (the tutorial's view, series {first})"),
     out.best)

# --- what makes the network generate: the three contenders, chosen on validation -------------------
runs = io.load_csv(snakemake.input.runs, ["variant", "optimizer", "status"])
picks = study.contenders(table, runs)
names = plots.L.CONTENDERS
runs["value"] = runs["value"].fillna("").astype(str)
if picks:
    save(plots.valid_time(runs, picks, lyap, p.generation["horizon"], p.generation["starts"]), out.valid_time)
else:
    placeholder(out.valid_time, "no test segment (data.test: 0): no valid times")
chosen, long = {}, {}
for key, row in picks.items():
    pred = io.load_predictions(preds[row["variant"], first])
    label = f"{names[key]}: {row['variant']}, {opt(row['optimizer'])}"
    if "start" in pred:
        chosen[label] = (pred["starts"][0], pred["start"][row["optimizer"]][:, 0])
    if "longterm" in pred:
        long[names[key]] = pred["longterm"][row["optimizer"]][:, 0]
if chosen:
    start = next(iter(chosen.values()))[0]
    horizon = len(next(iter(chosen.values()))[1])
    truth = series[first][start:start + horizon, 0]
    save(plots.start_continuations(truth, {k: c for k, (_, c) in chosen.items()}, start, lyap,
                                   title=f"How long does each contender follow the series? From the first test "
                                         f"start point (sample {start}), seed {base['seeds'][0]}, series {first}"),
         out.generation_continuations)
    save(plots.attractor(truth, {k.split(":")[0]: c for k, (_, c) in chosen.items()}, lag=p.tau,
                         title="Does each contender's continuation keep the attractor's shape? (delay embedding)"),
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
                         title=f"Where does a long free run end up? {settings['steps']} steps after "
                               f"{settings['discard']} (seed {base['seeds'][0]}, series {first}) against the "
                               "generator's own trajectory"),
         out.generation_longterm)
else:
    placeholder(out.generation_longterm, "no long free runs (no test segment)")

# --- does a long free run stay on the attractor: the contenders and the Things to try around the recipe --
if picks and p.longterm is not None and "d_stsp" in runs:
    floors = io.load_json(snakemake.input.attractor[1])["floors"]
    save(plots.around(runs, picks, floors, plots.recipe_of(runs)), out.around)
else:
    placeholder(out.around, "no long free runs scored (no test segment, or longterm: null)")

# --- is each model chaotic like the data: its own exponent against the data's, and its valid time ---------
if picks and "lyapunov_model" in runs:
    save(plots.exponents(runs, picks, study.exponent_interval(io.load_json(snakemake.input.lyapunov)),
                         plots.recipe_of(runs), p.generation["horizon"]), out.exponents)
else:
    placeholder(out.exponents, "no models' exponents measured (no test segment, or longterm: null)")
