"""Figures of the study (matplotlib, Agg backend). Each function returns a Figure; callers save it."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .study import fmt  # noqa: E402

OPTIMIZER_COLORS = {"sgd": "tab:blue", "bfgs": "tab:orange", "sgd+bfgs": "tab:green", "lbfgs": "tab:purple",
                    "sgd+lbfgs": "tab:brown", "ridge": "tab:red", "ridge+bfgs": "tab:pink", "ridge+lbfgs": "tab:olive"}


def learning_curves(curves, title=""):
    """SGD: cost, train and validation MSE per epoch; BFGS and L-BFGS-B: cost per iteration (log scales)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if curves.empty:  # e.g. a reservoir: its read-out is solved in closed form
        fig.text(0.5, 0.5, "no learning curves: nothing was trained iteratively", ha="center")
        ax1.set_axis_off()
        ax2.set_axis_off()
        fig.suptitle(title)
        return fig
    sgd = curves[(curves["phase"] == "sgd") & (curves["optimizer"] == curves["optimizer"].iloc[0])]
    for i, (seed, c) in enumerate(sgd.groupby("seed")):
        label = (lambda s: s) if i == 0 else (lambda s: None)
        ax1.plot(c["step"], c["train_mse"], color="tab:blue", lw=1, label=label("train MSE"))
        ax1.plot(c["step"], c["val_mse"], color="tab:red", lw=1, ls="--", label=label("validation MSE"))
    ax1.set(yscale="log", xlabel="epoch", ylabel="one-step MSE", title="gradient descent (each line a seed)")
    ax1.legend()
    bfgs = curves[curves["phase"] == "bfgs"]
    for opt, group in bfgs.groupby("optimizer"):
        for i, (seed, c) in enumerate(group.groupby("seed")):
            ax2.plot(c["step"], c["cost"], color=OPTIMIZER_COLORS.get(opt), lw=1, label=opt if i == 0 else None)
    ax2.set(yscale="log", xlabel="iteration", ylabel="cost (MSE + penalties)", title="quasi-Newton")
    if len(bfgs):
        ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def prediction(series, y, train, validation, title=""):
    """The tutorial's plot, aligned: data x_{t+1} against the one-step prediction made at t."""
    fig, ax = plt.subplots(figsize=(11, 3.5))
    s = np.ravel(series)
    t = np.arange(1, len(s))
    ax.plot(t, s[1:], color="black", lw=1.2, label="data")
    ax.plot(t, np.ravel(y)[:-1], color="tab:blue", lw=1, label="one-step prediction")
    ax.axvspan(train, train + validation, color="0.9", label="validation segment")
    ax.set(xlabel="sample", ylabel="x", title=title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def continuation(series, continuations, train, lyapunov=float("nan"), title="", diverged=None):
    """Closed-loop continuations (one line per seed and optimizer) against the true series.

    ``diverged`` ({optimizer: (K,) bool}) marks runs whose training diverged: they are not drawn,
    and their panel says how many there were.
    """
    s = np.ravel(series)
    fig, axes = plt.subplots(len(continuations), 1, figsize=(11, 2.6 * len(continuations)), sharex=True,
                             squeeze=False)
    for i, (ax, (opt, cont)) in enumerate(zip(axes[:, 0], continuations.items())):
        horizon = cont.shape[0]
        t = np.arange(train, train + horizon)
        start = max(0, train - 200)
        ax.plot(np.arange(start, train + horizon), s[start:train + horizon], color="black", lw=1.4,
                label="true series")
        bad = np.zeros(cont.shape[1], dtype=bool) if diverged is None else np.asarray(diverged[opt], dtype=bool)
        drawn = 0
        for k in np.flatnonzero(~bad):
            ax.plot(t, np.clip(cont[:, k], -2, 2), color=OPTIMIZER_COLORS.get(opt, f"C{i}"), lw=0.8, alpha=0.7,
                    label=f"{opt}: generated (each line a seed)" if drawn == 0 else None)
            drawn += 1
        if bad.any():
            ax.text(0.99, 0.95, f"{opt}: {bad.sum()} of {bad.size} seeds diverged in training (not drawn)",
                    transform=ax.transAxes, ha="right", va="top", color="red", fontsize=9)
        ax.axvline(train, color="0.4", ls=":", lw=1)
        if np.isfinite(lyapunov) and 0 < 1 / lyapunov < horizon:
            ax.axvline(train + 1 / lyapunov, color="0.6", ls="--", lw=1, label="one Lyapunov time")
        ax.set(ylabel="x", ylim=(s.min() - 0.3, s.max() + 0.3))
        ax.legend(loc="lower left", fontsize=8)
    axes[-1, 0].set_xlabel("sample (generation starts after the training segment)")
    axes[0, 0].set_title(title)
    fig.tight_layout()
    return fig


def attractor(series, generated, lag=17, title=""):
    """Delay embedding (x(t), x(t - lag)) of the true series and of generated continuations."""
    fig, axes = plt.subplots(1, 1 + len(generated), figsize=(3.6 * (1 + len(generated)), 3.6),
                             sharex=True, sharey=True, squeeze=False)
    s = np.ravel(series)
    panels = [("true series", s, "black")] + [(name, np.ravel(g), "tab:green") for name, g in generated.items()]
    for ax, (name, v, color) in zip(axes[0], panels):
        v = v[np.isfinite(v)]
        ax.plot(v[lag:], v[:-lag], lw=0.5, color=color)
        ax.set(title=name, xlabel="x(t)", ylabel=f"x(t - {lag})")
    lo, hi = s.min() - 0.2, s.max() + 0.2
    axes[0, 0].set(xlim=(lo, hi), ylim=(lo, hi))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def valid_time(table, lyapunov=float("nan"), marked=(), targets=()):
    """Test valid time of every variant x optimizer: mean ± 95% CI over its runs, weight seeds x series (bar)
    and median (dot), longest first; dashed lines at the ``targets`` (Lyapunov times); ``marked``
    (variant, optimizer) pairs in bold."""
    rows = table[table["vpt_steps_test_n"] > 0].sort_values("vpt_steps_test_mean", ascending=True)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.16 * len(rows)))
    y = np.arange(len(rows))
    colors = [OPTIMIZER_COLORS.get(o, "tab:gray") for o in rows["optimizer"]]
    ax.barh(y, rows["vpt_steps_test_mean"], xerr=rows["vpt_steps_test_ci95"].fillna(0), color=colors, alpha=0.6,
            error_kw={"lw": 0.8, "capsize": 2})
    ax.plot(rows["vpt_steps_test_median"], y, "k.", ms=4, label="median over runs")
    labels = [f"{v} · {o}" for v, o in zip(rows["variant"], rows["optimizer"])]
    ax.set_yticks(y, labels, fontsize=6)
    for tick, key in zip(ax.get_yticklabels(), zip(rows["variant"], rows["optimizer"])):
        if key in set(marked):
            tick.set_fontweight("bold")
    if np.isfinite(lyapunov) and lyapunov > 0:
        for lt in targets:
            ax.axvline(lt / lyapunov, color="0.3", ls="--", lw=1)
            ax.annotate(f"{fmt(lt, 2)} Lyapunov time{'s' if lt != 1 else ''}", (lt / lyapunov, -0.5),
                        fontsize=7, rotation=90, va="bottom", ha="right")
    ax.set(xlabel="valid steps on the test segment (median over start points; "
                  "bar: mean ± 95% CI over its runs, weight seeds × series)",
           ylim=(-0.7, len(rows) - 0.3))
    ax.legend(loc="lower right", fontsize=7)
    shown = [o for o in OPTIMIZER_COLORS if o in set(rows["optimizer"])]
    handles = [plt.Rectangle((0, 0), 1, 1, color=OPTIMIZER_COLORS[o], alpha=0.6) for o in shown]
    fig.legend(handles, shown, loc="upper right", fontsize=6, ncol=max(1, len(shown)))
    fig.tight_layout()
    return fig


def start_continuations(truth, continuations, start, lyapunov=float("nan"), title=""):
    """Continuations {label: (horizon,)} from one test start point against the truth (horizon,)."""
    fig, axes = plt.subplots(len(continuations), 1, figsize=(11, 2.3 * len(continuations)), sharex=True,
                             squeeze=False)
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
    axes[0, 0].set_title(title)
    fig.tight_layout()
    return fig


def _order(values):
    try:
        return sorted(values, key=float)
    except ValueError:
        return list(values)


def ablation_effects(table, axis, baseline_value, metrics=("val_mse", "nrmse_84", "vpt_steps"),
                     log_metrics=("val_mse",)):
    """Mean and 95% CI of each metric against the values of one ablation axis, per optimizer.

    The baseline sits at its own value of the axis (labelled "baseline"); red labels count
    diverged runs, which the means leave out.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    part = table[table["axis"].isin([axis, "baseline"])].copy()
    base = str(baseline_value).lower() if isinstance(baseline_value, bool) else str(baseline_value)
    part.loc[part["axis"] == "baseline", "value"] = base
    labels = _order(dict.fromkeys(part["value"]))
    pos = {lab: i for i, lab in enumerate(labels)}
    for ax, m in zip(axes[0], metrics):
        for j, (opt, g) in enumerate(part.groupby("optimizer", sort=False)):
            x = np.array([pos[v] for v in g["value"]]) + (j - 1) * 0.12
            ax.errorbar(x, g[f"{m}_mean"], yerr=g[f"{m}_ci95"].fillna(0), fmt="o", capsize=3,
                        color=OPTIMIZER_COLORS.get(opt), label=opt)
            for xi, (_, row) in zip(x, g.iterrows()):
                if row["n_diverged"]:
                    y = row[f"{m}_mean"] if np.isfinite(row[f"{m}_mean"]) else np.nanmean(part[f"{m}_mean"])
                    ax.annotate(f"{row['n_diverged']}/{row['n']} diverged", (xi, y), fontsize=7, color="red",
                                textcoords="offset points", xytext=(3, 3))
        ticks = [f"{lab}\n(baseline)" if lab == base else lab for lab in labels]
        ax.set_xticks(range(len(labels)), ticks)
        ax.set(xlabel=axis, ylabel=m.replace("_", " "), title=f"{m} (mean ± 95% CI)")
        if m in log_metrics:
            ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def benchmark(table):
    """Per-model-epoch time of each implementation and stack size, with ratios to the reference."""
    fig, ax = plt.subplots(figsize=(9, 4))
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
    ax.set(yscale="log", ylabel="ms per model per epoch (median)",
           title="training time per model-epoch (T=1500, H=15, float64); labels: ratio to the reference")
    ax.legend(title="models stacked")
    fig.tight_layout()
    return fig


def around(table, bases, metrics=("vpt_steps_test", "d_stsp", "d_h")):
    """The ablations around each base variant (``table``: pooled rows), a row of panels per base: mean and
    95% CI of each metric per variant and optimizer, the base on top (dotted line: its mean); red labels
    count diverged runs, which the means leave out."""
    metrics = [m for m in metrics if f"{m}_mean" in table]
    parts = [table[(table["variant"] == b) | ((table["base"] == b) & (table["axis"] != "variant"))] for b in bases]
    heights = [1 + 0.3 * part["variant"].nunique() for part in parts]
    fig, grid = plt.subplots(len(bases), len(metrics), figsize=(4.2 * len(metrics), 0.8 + sum(heights)),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for base, part, axes in zip(bases, parts, grid):
        labels = list(dict.fromkeys(part["variant"]))  # the base first
        pos = {v: len(labels) - 1 - i for i, v in enumerate(labels)}
        for ax, m in zip(axes, metrics):
            for j, (opt, g) in enumerate(part.groupby("optimizer", sort=False)):
                y = np.array([pos[v] for v in g["variant"]]) + j * 0.15
                ax.errorbar(g[f"{m}_mean"], y, xerr=g[f"{m}_ci95"].fillna(0), fmt="o", capsize=3,
                            color=OPTIMIZER_COLORS.get(opt), label=opt)
                for yi, (_, row) in zip(y, g.iterrows()):
                    if row["n_diverged"]:
                        ax.annotate(f"{row['n_diverged']}/{row['n']} diverged", (np.nanmean(g[f"{m}_mean"]), yi),
                                    fontsize=7, color="red")
            base_mean = part.loc[part["variant"] == base, f"{m}_mean"]
            if len(base_mean):
                ax.axvline(base_mean.iloc[0], color="0.6", ls=":", lw=1)
            ax.set_yticks([pos[v] for v in labels],
                          [f"{v} (base)" if v == base else v.removeprefix(f"{base}/") for v in labels]
                          if ax is axes[0] else [])
            ax.set(xlabel=f"{m.replace('_', ' ')} (mean ± 95% CI)")
        axes[0].legend(fontsize=7)
    fig.suptitle("the \"Things to try\" around a generating recipe: test valid steps and long-term divergences")
    fig.tight_layout()
    return fig


def long_runs(reference, runs, lag, spectra, title=""):
    """Long free runs against the reference trajectory: delay embedding (x(t), x(t - lag)) of each
    (columns), and every run's smoothed power spectrum over the reference's (last column).

    ``runs`` {label: (L,)}; ``spectra`` {label: (frequencies, power) or None} with the reference's
    under "reference" (``rnn.longterm.spectrum``).
    """
    n = len(runs)
    fig, axes = plt.subplots(1, n + 2, figsize=(3.2 * (n + 2), 3.4), squeeze=False)
    ref = np.ravel(reference)
    lo, hi = ref.min() - 0.3, ref.max() + 0.3
    panels = [("reference", ref, "black")] + [(k, np.ravel(v), f"C{i}") for i, (k, v) in enumerate(runs.items())]
    for ax, (label, v, color) in zip(axes[0], panels):
        finite = np.isfinite(v)
        v = np.clip(v[finite], lo, hi) if finite.any() else v[:0]
        ax.plot(v[lag:], v[:-lag], ",", color=color, alpha=0.3)
        ax.set(title=label if finite.all() else f"{label} (non-finite)", xlim=(lo, hi), ylim=(lo, hi),
               xlabel="x(t)", ylabel=f"x(t - {lag})")
    ax = axes[0, -1]
    for i, (label, spec) in enumerate(spectra.items()):
        if spec is None:
            continue
        frequencies, power = spec
        ax.semilogy(frequencies, power, color="black" if label == "reference" else f"C{i - 1}", lw=1.6 if
                    label == "reference" else 1, label=label)
    ax.set(xlim=(0, 0.1), xlabel="frequency (cycles/sample)", ylabel="power (normalised, smoothed)",
           title="spectra")
    ax.legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
