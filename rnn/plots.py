"""Figures of the study (matplotlib, Agg backend). Each function returns a Figure; callers save it (``save``).

A study figure answers one question, stated in its title; its axes are named by ``rnn.labels``; every run
is a dot beside the median and its bootstrap 95% interval; ``fig.caption`` (written into the PNG and shown
under the figure) is made from the numbers drawn, and ``fig.drawn`` records them for ``problems``.
"""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from . import labels as L  # noqa: E402
from .settings import format_value  # noqa: E402
from .study import fmt  # noqa: E402

OPTIMIZER_COLORS = {"sgd": "tab:blue", "bfgs": "tab:orange", "sgd+bfgs": "tab:green", "lbfgs": "tab:purple",
                    "sgd+lbfgs": "tab:brown", "ridge": "tab:red", "ridge+bfgs": "tab:pink", "ridge+lbfgs": "tab:olive"}
CONTENDER_COLORS = {"tutorial": "tab:green", "rnn": "tab:purple", "reservoir": "tab:blue"}
CEILING_STYLES = {"constant": ("tab:red", "--"), "sine": ("tab:orange", "-."), "noise": ("tab:brown", ":")}
DIVERGED = {"marker": "x", "color": "red"}
CENSORED = {"marker": ">", "facecolor": "none"}


def _figure(nrows=1, ncols=1, size=(9, 4), **kwargs):
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained", **kwargs)
    fig.caption, fig.drawn = "", {"intervals": [], "groups": {}}
    return fig, axes


def _finish(fig, title, caption):
    import textwrap

    fig.suptitle(textwrap.fill(title, width=int(fig.get_figwidth() * 11)), fontsize=11)  # ~11 characters an inch
    fig.caption = caption
    return fig


def save(path, fig, dpi=110):
    """Draw ``fig`` once at ``dpi``, log what ``problems`` finds in that drawing (a reader would trip on it),
    write the drawing atomically as a PNG with the caption in its Description, then close it. One drawing
    for both: checking and saving each drew the figure, and drawing is most of a figure job's time.
    Returns the problems."""
    import logging

    from PIL import Image, PngImagePlugin

    from . import io

    fig.set_dpi(dpi)
    fig.canvas.draw()
    found = problems(fig, draw=False)
    for problem in found:
        logging.getLogger(__name__).warning("%s: %s", path, problem)
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), bytes(fig.canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", getattr(fig, "caption", "") or "")
    with io.atomic(path, "wb") as f:
        image.save(f, format="png", pnginfo=info)
    plt.close(fig)
    return found


def caption_of(path):
    """The caption a figure was saved with ("" if none)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.text.get("Description", "")


def variant_label(variant, axis, value, base="baseline"):
    """How a reader sees a variant: 'hidden units 30', the base's name, or a named variant's name."""
    if axis in ("baseline", "variant") or variant == base:
        return "the tutorial's network" if variant == "baseline" else str(variant)
    return f"{L.setting(axis)} {value}"


def n_phrase(seeds, series):
    """'15 runs (5 seeds × 3 series)'."""
    return f"{seeds * series} run{'s' if seeds * series != 1 else ''} ({seeds} seed{'s' if seeds != 1 else ''} × " \
           f"{series} series)"


def _capital(text):
    return text[:1].upper() + text[1:]


def _jitter(n, width, seed=0):
    return np.random.default_rng(seed).uniform(-width, width, n) if n > 1 else np.zeros(n)


def _runs(fig, ax, where, values, metric, color, *, horizontal, group, width=0.12, censored=None, crossed=None):
    """Every run a dot at ``where`` (jittered across), the median a bar, its bootstrap 95% CI a line;
    ``censored`` runs as hollow triangles, ``crossed`` ones (diverged, counted at their value) as red crosses.
    NaN values are not drawn. Records the group in ``fig.drawn``."""
    v = np.asarray(values, dtype=float)
    keep = np.isfinite(v)
    cens = np.zeros(len(v), bool) if censored is None else np.asarray(censored, bool)
    cross = np.zeros(len(v), bool) if crossed is None else np.asarray(crossed, bool)
    pos = where + _jitter(len(v), width)
    for mask, style in ((keep & ~cens & ~cross, {"marker": "o", "s": 14, "color": color, "alpha": 0.55,
                                                 "linewidths": 0}),
                        (keep & cens & ~cross, {"s": 26, "edgecolors": color, **CENSORED}),
                        (keep & cross, {"s": 24, **DIVERGED})):
        if mask.any():
            xy = (v[mask], pos[mask]) if horizontal else (pos[mask], v[mask])
            ax.scatter(*xy, gid=f"runs:{group}", zorder=3, clip_on=False, **style)
    median, lo, hi = L.bootstrap_median(v[keep])
    if np.isfinite(median):
        if horizontal:
            ax.plot([lo, hi], [where, where], color="black", lw=1.6, zorder=4, solid_capstyle="butt")
            ax.plot([median], [where], marker="|", ms=14, mew=2.5, color="black", zorder=5)
        else:
            ax.plot([where, where], [lo, hi], color="black", lw=1.6, zorder=4, solid_capstyle="butt")
            ax.plot([where], [median], marker="_", ms=14, mew=2.5, color="black", zorder=5)
        fig.drawn["intervals"].append((metric, lo, hi))
    fig.drawn["groups"][group] = {"n": int(keep.sum()), "censored": int((keep & cens).sum()),
                                  "diverged": int((keep & cross).sum()), "median": median, "low": lo, "high": hi}
    return median, lo, hi


def _key_handles(extra=()):
    handles = [Line2D([], [], ls="", marker="o", color="0.4", alpha=0.6, label="one run"),
               Line2D([], [], color="black", lw=1.6, marker="|", ms=10, mew=2.5,
                      label="median and its bootstrap 95% interval")]
    return handles + list(extra)


def _valid_times(part, lyapunov):
    """Lyapunov times of each run, and which diverged (counted as 0: they generate nothing)."""
    steps = part["vpt_steps_test"].to_numpy(dtype=float)
    diverged = (part["status"] == "diverged").to_numpy()
    return np.where(diverged, 0.0, steps) * lyapunov, diverged


# --- which recipe generates longest --------------------------------------------------------------------

def valid_time(runs, picks, lyapunov, horizon=None, n_starts=None):
    """Which recipe generates longest: the contenders' test valid time (Lyapunov times) per series and pooled,
    every run a dot; censored runs (still valid at the horizon) and diverged ones (0) marked."""
    keys = [k for k in L.CONTENDERS if k in picks]
    series = sorted(runs["data_seed"].unique()) if "data_seed" in runs else [0]
    fig, axes = _figure(len(keys), 1, size=(9, 1.1 + 1.25 * len(keys) * (1 + 0.25 * len(series))), sharex=True)
    limit = horizon * lyapunov if horizon else None
    counts = {}
    for ax, key in zip(axes[:, 0], keys):
        row = picks[key]
        part = runs[(runs["variant"] == row["variant"]) & (runs["optimizer"] == row["optimizer"])]
        rows = [("all series", part)] + [(f"series {s}", part[part["data_seed"] == s]) for s in series] \
            if len(series) > 1 else [(f"series {series[0]}", part)]
        for i, (name, p) in enumerate(rows):
            lt, div = _valid_times(p, lyapunov)  # a diverged run counts 0, drawn as a cross
            cens = p["vpt_steps_test"].to_numpy(dtype=float) >= horizon if horizon else None
            _runs(fig, ax, len(rows) - 1 - i, lt, "vpt_lyapunov_test", CONTENDER_COLORS[key], horizontal=True,
                  group=f"{key}/{name}", censored=cens, crossed=div, width=0.18)
        ax.set_yticks(range(len(rows)), [f"{name}: median {fmt(fig.drawn['groups'][f'{key}/{name}']['median'])}"
                                         for name, _ in rows][::-1], fontsize=8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        seeds = part["seed"].nunique()
        counts[key] = (seeds, part["data_seed"].nunique() if "data_seed" in part else 1)
        ax.set_title(f"{L.CONTENDERS[key]}: {row['variant']}, {L.optimizer(row['optimizer'])}; "
                     f"{n_phrase(*counts[key])}", fontsize=9, loc="left")
        if limit:
            ax.axvline(limit, color="0.5", ls="--", lw=1)  # off the axis when no run reaches it
    axes[-1, 0].set_xlabel(L.axis_label("vpt_lyapunov_test"))
    reached = any(g["censored"] for g in fig.drawn["groups"].values())
    longest = max((float(np.nanmax(_valid_times(runs[(runs["variant"] == picks[k]["variant"])
                                                      & (runs["optimizer"] == picks[k]["optimizer"])], lyapunov)[0]))
                   for k in keys), default=1.0)
    axes[-1, 0].set_xlim(0, (limit if limit and reached else longest * 1.08) * 1.04)  # the horizon where it bites
    extra = [Line2D([], [], ls="", marker=">", mfc="none", color="0.3",
                    label="still valid at the horizon (censored)")] if reached else []
    extra += [Line2D([], [], ls="", label="diverged in training (counted as 0)", **DIVERGED)]
    extra += [Line2D([], [], color="0.5", ls="--", label=f"generation horizon ({fmt(limit)} Lyapunov times)")] \
        if limit and reached else []
    fig.legend(handles=_key_handles(extra), loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    pooled = {k: fig.drawn["groups"][f"{k}/{'all series' if len(series) > 1 else f'series {series[0]}'}"]
              for k in keys}
    caption = ("Valid time: the median over each run's test start points"
               + (f" ({n_starts})" if n_starts else "") + " of the steps before the error first exceeds half the "
               f"series' standard deviation, in Lyapunov times (one is {fmt(1 / lyapunov)} steps). "
               + " ".join(f"{_capital(L.CONTENDERS[k])}: {n_phrase(*counts[k])}, median {fmt(g['median'])} "
                          f"(95% CI {fmt(g['low'])} to {fmt(g['high'])})"
                          + (f", {g['censored']} censored" if g["censored"] else "")
                          + (f", {g['diverged']} diverged" if g["diverged"] else "") + "."
                          for k, g in pooled.items())
               + " A run that diverged in training counts as 0. Each contender was chosen on the validation "
                 "start points only." + ("" if reached or not limit else f" No run's median reaches the {horizon}-step "
                                         f"horizon ({fmt(limit)} Lyapunov times)."))
    fig.drawn["counts"] = counts
    return _finish(fig, "Which recipe generates longest? Valid time from held-out test start points", caption)


# --- each Thing to try on the tutorial's network and on the generating recipe ------------------------------

def _order(values):
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values, key=lambda v: (v not in ("false", "tanh"), v))


def _side(fig, axes, runs, base, axis, lyapunov, column):
    """One column of ``ablation``: the variants of ``axis`` around ``base`` on the series they share."""
    part = runs[(runs["base"] == base) & ((runs["variant"] == base) | (runs["axis"] == axis))]
    common = set.intersection(*(set(g["data_seed"]) for _, g in part.groupby("variant")))
    part = part[part["data_seed"].isin(common)].copy()
    own = part.loc[part["variant"] == base, axis]
    base_value = format_value(own.iloc[0].item() if hasattr(own.iloc[0], "item") else own.iloc[0]) \
        if len(own) else None
    part["shown"] = np.where(part["variant"] == base, base_value, part["value"].astype(str))
    values = _order(dict.fromkeys(part["shown"]))
    opts = list(dict.fromkeys(part["optimizer"]))
    width = 0.8 / len(opts)
    diverged_at = {}
    for (ax, metric) in zip(axes, ("val_mse", "vpt_lyapunov_test")):
        for j, opt in enumerate(opts):
            for i, value in enumerate(values):
                p = part[(part["shown"] == value) & (part["optimizer"] == opt)]
                if p.empty:
                    continue
                div = (p["status"] == "diverged").to_numpy()
                diverged_at[value] = diverged_at.get(value, [0, 0])
                if metric == "val_mse":
                    diverged_at[value][0] += int(div.sum())
                    diverged_at[value][1] += len(p)
                v = p["val_mse"].to_numpy(dtype=float) if metric == "val_mse" else _valid_times(p, lyapunov)[0]
                v = np.where(div, np.nan, v)
                _runs(fig, ax, i + (j - (len(opts) - 1) / 2) * width, v, metric, OPTIMIZER_COLORS.get(opt, "0.3"),
                      horizontal=False, width=width * 0.3, group=f"{column}/{metric}/{value}/{opt}")
        ax.set_xticks(range(len(values)), [
            f"{v}{' (its own)' if v == base_value else ''}"
            + (f"\n{diverged_at[v][0]} of {diverged_at[v][1]}\ndiverged" if diverged_at.get(v, [0])[0] else "")
            for v in values], fontsize=8)
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set_ylabel(L.axis_label(metric), fontsize=9)
        if L.METRICS[metric].log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
    axes[-1].set_xlabel(L.setting(axis), fontsize=9)
    seeds, series = part["seed"].nunique(), part["data_seed"].nunique()
    return opts, (seeds, series), sum(d[0] for d in diverged_at.values())


def ablation(runs, axis, lyapunov, recipe=None):
    """Each Thing to try: its effect on the tutorial's one-step network (left) and on the generating recipe
    (right, where ``recipe``'s own ablations vary ``axis``): one-step error (top) and valid time (bottom)."""
    sides = [("baseline", "the tutorial's network")]
    if recipe is not None:
        around = ((runs["base"] == recipe) & (runs["axis"] == axis)).any()
        sides.append((recipe, f"the generating recipe, {recipe}") if around else (None, recipe))
    fig, grid = _figure(2, len(sides), size=(7 + 5 * (len(sides) - 1), 6.6))
    text, used = [], {}
    for col, (base, name) in enumerate(sides):
        axes = grid[:, col]
        if base is None:
            for ax in axes:
                ax.set_axis_off()
            axes[0].text(0.5, 0.5, f"{L.setting(axis)}: not varied around\nthe generating recipe, {name}",
                         ha="center", va="center", transform=axes[0].transAxes, fontsize=9)
            continue
        opts, (seeds, series), n_div = _side(fig, axes, runs, base, axis, lyapunov, col)
        used.update(dict.fromkeys(opts))
        axes[0].set_title(f"{name}: {n_phrase(seeds, series)} each", fontsize=9, loc="left")
        text.append(f"{name}: {n_phrase(seeds, series)} per value and optimizer"
                    + (f", {n_div} diverged in training (not drawn)" if n_div else ""))
    handles = [Line2D([], [], ls="", marker="o", color=OPTIMIZER_COLORS.get(o, "0.3"), label=L.optimizer(o))
               for o in used]
    fig.legend(handles=_key_handles(handles), loc="outside lower center", ncol=min(5 if len(sides) > 1 else 2,
                                                                           2 + len(handles)),
               fontsize=8, frameon=False)
    caption = (f"{L.setting(axis).capitalize()}: one-step validation error and valid time from the test start "
               "points (Lyapunov times); " + "; ".join(text) + ". Lower error is better, longer valid time is "
               "better; '(its own)' marks the value the network has without the change.")
    return _finish(fig, f"What does a change of the {L.setting(axis)} do to one-step error and to generation?",
                   caption)


# --- does it stay on the attractor ----------------------------------------------------------------------

def _bands(ax, floors, metric):
    truth = [r[metric] for r in floors if r["case"] == "truth"]
    if truth:
        ax.axvspan(min(truth) * 0.97, max(truth) * 1.03, color="0.8", zorder=0)
    for case, (color, ls) in CEILING_STYLES.items():
        values = [r[metric] for r in floors if r["case"] == case]
        if values:
            ax.axvspan(min(values) * 0.985, max(values) * 1.015, color=color, alpha=0.25, zorder=0)
            ax.axvline(float(np.mean(values)), color=color, ls=ls, lw=1.2, zorder=1)


def around(runs, picks, floors, recipe=None):
    """Does a long free run stay on the attractor? D_stsp and D_H of the contenders (all series) and of the
    Things to try around the generating recipe, against the floor (two true trajectories) and the ceilings
    (a constant, a sine, noise) drawn as labelled bands."""
    groups = [("the contenders, all series", [(L.CONTENDERS[k], picks[k]["variant"], picks[k]["optimizer"], None)
                                              for k in L.CONTENDERS if k in picks])]
    if recipe is not None and (runs["base"] == recipe).any():
        part = runs[runs["base"] == recipe]
        common = sorted(set.intersection(*(set(g["data_seed"]) for _, g in part.groupby("variant"))))
        rows = [(f"{recipe} itself", recipe, None, common)]
        for (variant, axis, value), _ in part[part["variant"] != recipe].groupby(["variant", "axis", "value"],
                                                                                sort=False):
            rows.append((variant_label(variant, axis, value, recipe), variant, None, common))
        groups.append((f"Things to try around {recipe}, series {', '.join(map(str, common))}", rows))
    heights = [len(rows) + 1 for _, rows in groups]
    fig, grid = _figure(len(groups), 2, size=(12, 1.6 + 0.32 * sum(heights)),
                        gridspec_kw={"height_ratios": heights}, sharex="col")
    notes = []
    for (name, rows), axes in zip(groups, grid):
        for ax, metric in zip(axes, ("d_stsp", "d_h")):
            _bands(ax, floors, metric)
            ticks = []
            for i, (label, variant, opt, series) in enumerate(rows):
                p = runs[runs["variant"] == variant]
                p = p[p["optimizer"] == opt] if opt else p
                p = p[p["data_seed"].isin(series)] if series is not None else p
                div = int((p["status"] == "diverged").sum())
                y = len(rows) - 1 - i
                v = p[metric].to_numpy(dtype=float)
                g = _runs(fig, ax, y, np.where((p["status"] == "diverged").to_numpy(), np.nan, v), metric,
                          "tab:purple" if series is not None else "tab:blue", horizontal=True, width=0.18,
                          group=f"{name}/{metric}/{label}")
                ticks.append(f"{label} ({div} of {len(p)} diverged)" if div else label)
                if metric == "d_stsp":
                    notes.append((label, p["seed"].nunique(), p["data_seed"].nunique() if "data_seed" in p else 1))
            ax.set_yticks(range(len(rows)), ticks[::-1] if ax is axes[0] else [""] * len(rows), fontsize=8)
            ax.set_ylim(-0.6, len(rows) - 0.4)
            if L.METRICS[metric].log:
                ax.set_xscale("log")
            else:
                ax.set_xlim(0, 1.02)
        axes[0].set_title(name, fontsize=9, loc="left")
    for ax, metric in zip(grid[-1], ("d_stsp", "d_h")):
        ax.set_xlabel(L.axis_label(metric) + ", lower is closer", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color="0.8", label=f"{L.FLOOR} (range)")]
    handles += [Line2D([], [], color=c, ls=ls, label=f"ceiling: {L.CEILINGS[case]}")
                for case, (c, ls) in CEILING_STYLES.items() if any(r["case"] == case for r in floors)]
    fig.legend(handles=_key_handles(handles), loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    truth = [r for r in floors if r["case"] == "truth"]
    caption = ("Long free runs scored against the generator's own trajectory: D_stsp (state-space divergence of "
               "delay-embedding histograms, log axis) and D_H (Hellinger distance of smoothed spectra). Grey band: "
               f"the {len(truth)} independent true trajectories (D_stsp {fmt(min(r['d_stsp'] for r in truth))} to "
               f"{fmt(max(r['d_stsp'] for r in truth))}); coloured lines: what a constant, a pure sine and white "
               "noise score. " if truth else "") + "Runs per row: " + "; ".join(
        f"{label}, {n_phrase(seeds, series)}" for label, seeds, series in notes) + "."
    return _finish(fig, "Does a long free run stay on the attractor?", caption)


def exponents(runs, picks, data, recipe=None, horizon=None):
    """Is each model chaotic like the data? Left: each model's own largest Lyapunov exponent (``lyapunov_model``)
    for the contenders (all series) and the Things to try around the generating recipe, against the data's
    exponent and its 95% interval ``data`` (value, low, high); right: exponent against test valid time, run by
    run (a chaotic model can follow the data at most about as long as its error takes to grow to the threshold
    at its own rate)."""
    value, d_lo, d_hi = data
    rows = [(L.CONTENDERS[k], picks[k]["variant"], picks[k]["optimizer"], CONTENDER_COLORS[k])
            for k in L.CONTENDERS if k in picks]
    if recipe is not None and (runs["base"] == recipe).any():
        part = runs[(runs["base"] == recipe) & (runs["variant"] != recipe)]
        rows += [(f"around {recipe}: {variant_label(v, a, val, recipe)}", v, None, "0.45")
                 for (v, a, val), _ in part.groupby(["variant", "axis", "value"], sort=False)]
    fig, grid = _figure(1, 2, size=(12, 1.9 + 0.3 * len(rows)), gridspec_kw={"width_ratios": [1.25, 1]})
    strip, scatter = grid[0]
    notes = []
    for ax in (strip, scatter):
        ax.axvspan(d_lo, d_hi, color="0.8", zorder=0)
        ax.axvline(value, color="black", ls="--", lw=1, zorder=1)
        ax.axvline(0.0, color="0.6", ls=":", lw=1, zorder=1)
    for i, (label, variant, opt, color) in enumerate(rows):
        p = runs[runs["variant"] == variant]
        p = p[p["optimizer"] == opt] if opt else p
        lam = np.where((p["status"] == "diverged").to_numpy(), np.nan, p["lyapunov_model"].to_numpy(dtype=float))
        _runs(fig, strip, len(rows) - 1 - i, lam, "lyapunov_model", color, horizontal=True, width=0.18,
              group=f"exponent/{label}")
        lt = np.where((p["status"] == "diverged").to_numpy(), 0.0, p["vpt_lyapunov_test"].to_numpy(dtype=float))
        cens = p["vpt_steps_test"].to_numpy(dtype=float) >= horizon if horizon else np.zeros(len(p), bool)
        ok = np.isfinite(lam)
        for mask, style in ((ok & ~cens, {"marker": "o", "s": 16, "color": color, "alpha": 0.6, "linewidths": 0}),
                            (ok & cens, {"s": 26, "edgecolors": color, **CENSORED})):
            if mask.any():
                scatter.scatter(lam[mask], lt[mask], gid=f"runs:scatter/{label}", zorder=3, **style)
        notes.append((label, p["seed"].nunique(), p["data_seed"].nunique() if "data_seed" in p else 1,
                      int(np.sum(~ok))))
    strip.set_yticks(range(len(rows)), [r[0] for r in rows][::-1], fontsize=8)
    strip.set_ylim(-0.6, len(rows) - 0.4)
    strip.set_xlabel(L.axis_label("lyapunov_model"), fontsize=9)
    strip.set_title("each model's own exponent", fontsize=9, loc="left")
    scatter.set_xlabel(L.axis_label("lyapunov_model"), fontsize=9)
    scatter.set_ylabel(L.axis_label("vpt_lyapunov_test"), fontsize=9)
    scatter.set_title("against its valid time, run by run", fontsize=9, loc="left")
    handles = [plt.Rectangle((0, 0), 1, 1, color="0.8", label=f"the data's exponent, {fmt(value)} (95% CI)"),
               Line2D([], [], color="0.6", ls=":", label="0: not chaotic")]
    handles += [Line2D([], [], ls="", marker="o", color=CONTENDER_COLORS[k], label=L.CONTENDERS[k])
                for k in L.CONTENDERS if k in picks]
    if horizon:
        handles.append(Line2D([], [], ls="", marker=">", mfc="none", color="0.3",
                              label="still valid at the horizon (censored)"))
    fig.legend(handles=_key_handles(handles), loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    caption = (f"The data's largest Lyapunov exponent is {fmt(value)} per step (95% CI {fmt(d_lo)} to {fmt(d_hi)}, "
               "grey band); each model's own is measured on its closed loop (Benettin's method with its Jacobians "
               "along a long free run). Runs per row: " + "; ".join(
                   f"{label}, {n_phrase(seeds, series)}" + (f", {nan} without an exponent (diverged)" if nan else "")
                   for label, seeds, series, nan in notes) + ".")
    return _finish(fig, "Is each model chaotic like the data? Its own largest Lyapunov exponent, and its valid time",
                   caption)


# --- the tutorial's views ----------------------------------------------------------------------------

def learning_curves(curves, title=""):
    """SGD: training and validation MSE per epoch; BFGS and L-BFGS-B: cost per iteration (log scales)."""
    fig, axes = _figure(1, 2, size=(11, 4))
    ax1, ax2 = axes[0]
    if curves.empty:  # e.g. a reservoir: its read-out is solved in closed form
        ax1.text(0.5, 0.5, "no learning curves: nothing was trained iteratively", ha="center",
                 transform=ax1.transAxes)
        ax1.set_axis_off()
        ax2.set_axis_off()
        return _finish(fig, title, "")
    sgd = curves[(curves["phase"] == "sgd") & (curves["optimizer"] == curves["optimizer"].iloc[0])]
    for i, (seed, c) in enumerate(sgd.groupby("seed")):
        ax1.plot(c["step"], c["train_mse"], color="tab:blue", lw=1, label="training" if i == 0 else None)
        ax1.plot(c["step"], c["val_mse"], color="tab:red", lw=1, ls="--", label="validation" if i == 0 else None)
    ax1.set(yscale="log", xlabel="epoch", ylabel="one-step error (MSE)", title="gradient descent (a line per seed)")
    if len(sgd):
        ax1.legend(fontsize=8)
    bfgs = curves[curves["phase"] == "bfgs"]
    for opt, group in bfgs.groupby("optimizer"):
        for i, (seed, c) in enumerate(group.groupby("seed")):
            ax2.plot(c["step"], c["cost"], color=OPTIMIZER_COLORS.get(opt), lw=1,
                     label=L.optimizer(opt) if i == 0 else None)
    ax2.set(yscale="log", xlabel="iteration", ylabel="cost (MSE + penalties)", title="quasi-Newton")
    if len(bfgs):
        ax2.legend(fontsize=8)
    return _finish(fig, title, "")


def prediction(series, y, train, validation, title="", window=300):
    """How close is the one-step prediction? The data against it over the start of the validation segment
    (left), and the absolute one-step error over every sample (right, log axis)."""
    s = np.ravel(series)
    pred = np.ravel(y)[:-1]
    t = np.arange(1, len(s))
    err = np.abs(pred - s[1:len(pred) + 1])
    fig, axes = _figure(1, 2, size=(12, 3.8), gridspec_kw={"width_ratios": [1, 1.4]})
    ax1, ax2 = axes[0]
    w = slice(train, min(train + window, len(pred)))
    ax1.plot(t[w], s[1:][w], color="black", lw=2.2, label="data")
    ax1.plot(t[w], pred[w], color="tab:orange", lw=1, ls="--", label="one-step prediction")
    ax1.set(xlabel="sample", ylabel="x", title=f"the first {w.stop - w.start} validation samples")
    ax2.semilogy(t[: len(err)], np.maximum(err, 1e-12), color="tab:orange", lw=0.5, alpha=0.35)
    k = 50  # samples in the running median
    if len(err) > k:
        running = np.median(np.lib.stride_tricks.sliding_window_view(err, k), axis=1)
        ax2.semilogy(t[k // 2: k // 2 + len(running)], running, color="tab:red", lw=1.4,
                     label=f"running median ({k} samples)")
    ax2.axvspan(train, train + validation, color="0.9", label="validation segment")
    ax2.set(xlabel="sample", ylabel="|prediction − data|", title="one-step error over the whole series")
    handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    return _finish(fig, title, f"Median absolute one-step error on validation: "
                               f"{fmt(float(np.median(err[train:train + validation])))}.")


def _collapsed(v, reference_std):
    v = v[np.isfinite(v)]
    return len(v) > 0 and np.std(v) < 1e-3 * reference_std


def attractor(series, generated, lag=17, title=""):
    """Delay embedding (x(t), x(t - lag)) of the true series and of generated continuations; a run that
    collapsed to a point says so."""
    fig, axes = _figure(1, 1 + len(generated), size=(3.6 * (1 + len(generated)), 3.8), sharex=True, sharey=True)
    s = np.ravel(series)
    panels = [("true series", s, "black")] + [(name, np.ravel(g), f"C{i}")
                                              for i, (name, g) in enumerate(generated.items())]
    for ax, (name, v, color) in zip(axes[0], panels):
        v = v[np.isfinite(v)]
        ax.plot(v[lag:], v[:-lag], lw=0.5, color=color)
        if _collapsed(v, s.std()):
            ax.plot(v[-1:], v[-1:], "o", color=color, ms=8)
            name += "\ncollapsed to a point"
        ax.set_title(name, fontsize=9)
        ax.set(xlabel="x(t)")
    axes[0, 0].set_ylabel(f"x(t − {lag})")
    lo, hi = s.min() - 0.2, s.max() + 0.2
    axes[0, 0].set(xlim=(lo, hi), ylim=(lo, hi))
    return _finish(fig, title, "")


def continuation(series, continuations, train, lyapunov=float("nan"), title="", diverged=None):
    """Closed-loop continuations (one line per seed and optimizer) against the true series.

    ``diverged`` ({optimizer: (K,) bool}) marks runs whose training diverged: they are not drawn,
    and their panel says how many there were.
    """
    s = np.ravel(series)
    fig, axes = _figure(len(continuations), 1, size=(11, 2.6 * len(continuations) + 0.6), sharex=True)
    for i, (ax, (opt, cont)) in enumerate(zip(axes[:, 0], continuations.items())):
        horizon = cont.shape[0]
        t = np.arange(train, train + horizon)
        start = max(0, train - 200)
        ax.plot(np.arange(start, train + horizon), s[start:train + horizon], color="black", lw=1.4,
                label="true series")
        bad = np.zeros(cont.shape[1], dtype=bool) if diverged is None else np.asarray(diverged[opt], dtype=bool)
        for n, k in enumerate(np.flatnonzero(~bad)):
            ax.plot(t, np.clip(cont[:, k], -2, 2), color=OPTIMIZER_COLORS.get(opt, f"C{i}"), lw=0.8, alpha=0.7,
                    label=f"{L.optimizer(opt)}: generated (a line per seed)" if n == 0 else None)
        if bad.any():
            note = f"{L.optimizer(opt)}: {bad.sum()} of {bad.size} seeds diverged in training (not drawn)"
            ax.text(0.99, 0.95, note, transform=ax.transAxes, ha="right", va="top", color="red", fontsize=9)
        ax.axvline(train, color="0.4", ls=":", lw=1)
        if np.isfinite(lyapunov) and 0 < 1 / lyapunov < horizon:
            ax.axvline(train + 1 / lyapunov, color="0.6", ls="--", lw=1, label="one Lyapunov time")
        ax.set(ylabel="x", ylim=(s.min() - 0.3, s.max() + 0.3))
        ax.legend(loc="lower left", fontsize=8)
    axes[-1, 0].set_xlabel("sample (generation starts after the training segment)")
    return _finish(fig, title, "")


def start_continuations(truth, continuations, start, lyapunov=float("nan"), title=""):
    """Continuations {label: (horizon,)} from one test start point against the truth (horizon,)."""
    fig, axes = _figure(len(continuations), 1, size=(11, 2.3 * len(continuations) + 0.6), sharex=True)
    t = start + np.arange(len(truth))
    for i, (ax, (label, cont)) in enumerate(zip(axes[:, 0], continuations.items())):
        ax.plot(t, truth, color="black", lw=1.3, label="true series")
        ax.plot(t, np.clip(cont, -2, 2), color=f"C{i}", lw=0.9, label=label)
        if np.isfinite(lyapunov) and lyapunov > 0:
            for n in range(1, int(len(truth) * lyapunov) + 1):
                ax.axvline(start + n / lyapunov, color="0.7", ls="--", lw=0.8)
        ax.set(ylabel="x", ylim=(truth.min() - 0.3, truth.max() + 0.3))
        ax.legend(loc="lower left", fontsize=8)
    axes[-1, 0].set_xlabel("sample (dashed: every Lyapunov time after the start point)")
    return _finish(fig, title, "")


def long_runs(reference, runs, lag, spectra, title=""):
    """Long free runs against the reference trajectory: delay embedding (x(t), x(t - lag)) of each
    (columns), and every run's smoothed power spectrum over the reference's (last column). A run that
    collapsed to a point is drawn as a point and says so.

    ``runs`` {label: (L,)}; ``spectra`` {label: (frequencies, power) or None} with the reference's
    under "reference" (``rnn.longterm.spectrum``).
    """
    n = len(runs)
    fig, axes = _figure(1, n + 2, size=(3.3 * (n + 2), 3.8))
    ref = np.ravel(reference)
    lo, hi = ref.min() - 0.3, ref.max() + 0.3
    panels = [("reference", ref, "black")] + [(k, np.ravel(v), f"C{i}") for i, (k, v) in enumerate(runs.items())]
    notes = []
    for ax, (label, v, color) in zip(axes[0], panels):
        finite = np.isfinite(v)
        v = np.clip(v[finite], lo, hi) if finite.any() else v[:0]
        ax.plot(v[lag:], v[:-lag], ",", color=color, alpha=0.3)
        name = label if finite.all() else f"{label}\n(non-finite)"
        if _collapsed(v, ref.std()):
            ax.plot(v[-1:], v[-1:], "o", color=color, ms=9)
            ax.annotate("collapsed to a point", (v[-1], v[-1]), xytext=(0.5, 0.1), textcoords="axes fraction",
                        ha="center", fontsize=8, arrowprops={"arrowstyle": "->", "color": color})
            name = f"{label}\ncollapsed to x = {fmt(float(v[-1]))}"
            notes.append(f"{label} collapsed to a fixed point (x = {fmt(float(v[-1]))})")
        ax.set_title(name, fontsize=9)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="x(t)", ylabel=f"x(t − {lag})")
    ax = axes[0, -1]
    for i, (label, spec) in enumerate(spectra.items()):
        if spec is None:
            continue
        frequencies, power = spec
        ax.semilogy(frequencies, power, color="black" if label == "reference" else f"C{i - 1}",
                    lw=1.6 if label == "reference" else 1, label=label)
    ax.set(xlim=(0, 0.1), xlabel="frequency (cycles/sample)", ylabel="power (normalised, smoothed)",
           title="spectra")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return _finish(fig, title, "; ".join(notes) + ("." if notes else ""))


def benchmark(table):
    """Per-model-epoch time of each implementation and stack size, with ratios to the reference."""
    fig, axes = _figure(1, 1, size=(9, 4.2))
    ax = axes[0, 0]
    impls = list(dict.fromkeys(table["implementation"]))
    ks = sorted(table["K"].unique())
    width = 0.8 / len(ks)
    for j, K in enumerate(ks):
        part = table[table["K"] == K].set_index("implementation").reindex(impls)
        bars = ax.bar(np.arange(len(impls)) + (j - (len(ks) - 1) / 2) * width, part["ms_per_model_epoch"],
                      width, label=f"K = {K}")
        for b, r in zip(bars, part["ratio_to_reference"]):
            if np.isfinite(r):
                ax.annotate(f"{fmt(r, 2)}×", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                            va="bottom", fontsize=7)
    ax.set_xticks(range(len(impls)), impls, rotation=15)
    ax.set(yscale="log", ylabel="ms per model per epoch (median)")
    ax.legend(title="models stacked")
    return _finish(fig, "Training time per model-epoch (T=1500, H=15, float64); labels: ratio to the reference", "")


# --- legibility -------------------------------------------------------------------------------------

def _texts(fig):
    """Every piece of text a reader sees (tick labels only where a tick is drawn), with its window box."""
    renderer = fig.canvas.get_renderer()
    ticks, shown = set(), set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update({id(tick.label1), id(tick.label2)})
            if ax.axison:  # the ticks inside the view, which are drawn
                shown.update(i for tick in axis._update_ticks() for i in (id(tick.label1), id(tick.label2)))
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or (id(t) in ticks and id(t) not in shown):
            continue
        out.append((t, t.get_window_extent(renderer)))
    return out


def problems(fig, tolerance=1.0, draw=True):
    """What a reader would trip on, as sentences: overlapping text, text cut at the canvas edge, a raw column
    name in any text, an interval outside its metric's range, a caption count that differs from what is
    drawn. Empty when the figure is legible. ``draw=False``: the figure was just drawn (``save``)."""
    if draw:
        fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    texts = _texts(fig)
    out = []
    raw = sorted(L.raw_names(), key=len, reverse=True)
    for i, (t, box) in enumerate(texts):
        s = t.get_text()
        if box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance or box.y1 > height + tolerance:
            out.append(f"text cut at the edge: {s!r}")
        for name in raw:
            if re.search(rf"(?<![\w/-]){re.escape(name)}(?![\w-])", s):
                out.append(f"raw name {name!r} in {s!r}")
                break
        for u, other in texts[i + 1:]:
            w = min(box.x1, other.x1) - max(box.x0, other.x0)
            h = min(box.y1, other.y1) - max(box.y0, other.y0)
            if w > tolerance and h > tolerance:
                out.append(f"overlapping text: {s!r} and {u.get_text()!r}")
    for metric, lo, hi in getattr(fig, "drawn", {}).get("intervals", []):
        m = L.METRICS[metric]
        if not (m.low <= lo <= hi <= m.high):
            out.append(f"interval [{lo}, {hi}] of {metric} leaves [{m.low}, {m.high}]")
    drawn = {}
    for artist in fig.findobj(lambda a: (a.get_gid() or "").startswith("runs:")):
        group = artist.get_gid()[5:]
        drawn[group] = drawn.get(group, 0) + len(artist.get_offsets())
    for group, g in getattr(fig, "drawn", {}).get("groups", {}).items():
        if drawn.get(group, 0) != g["n"]:
            out.append(f"group {group!r}: {drawn.get(group, 0)} dots drawn, {g['n']} recorded")
    return out


# --- the study's figures from its tables ---------------------------------------------------------------

def recipe_of(runs):
    """The generating recipe: the first named variant with Things to try around it (None if none)."""
    around = runs[(runs["base"] != "baseline") & ~runs["axis"].isin(("baseline", "variant"))] if "base" in runs \
        else runs[:0]
    return around["base"].iloc[0] if len(around) else None


def lyapunov_of(runs):
    """The Lyapunov exponent (per step) the tables were scored with: Lyapunov times over steps."""
    r = runs["vpt_lyapunov_test"] / runs["vpt_steps_test"]
    r = r[np.isfinite(r) & (runs["vpt_steps_test"] > 0)]
    return float(r.median()) if len(r) else float("nan")
