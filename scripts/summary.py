"""Rule summary: a static summary of the study, readable without Snakemake (Markdown, and the same as an HTML
page a browser shows with its figures)."""
import os
from pathlib import Path

from rnn import findings, io, plots, settings, study

io.job_logging(snakemake.log[0])
cfg = snakemake.params.config
out = Path(snakemake.output.md)
runs = io.load_csv(snakemake.input.runs, ["variant", "optimizer", "status", "train_seconds"])
table = io.load_csv(snakemake.input.ablation, ["variant", "optimizer"])
records = snakemake.params.benchmarks  # the training jobs' benchmark records (params: deleting one retrains nothing)
wall = {f: float(io.load_csv(f, ["s"], sep="\t")["s"].iloc[0]) for f in records if os.path.exists(f)}
missing = len(records) - len(wall)
compute = study.timing_split(runs, wall if not missing else None)
counts = runs["status"].value_counts().to_dict()
data = cfg["data"]


def link(path):
    """The figure and, under it, the caption it was saved with."""
    rel = os.path.relpath(path, out.parent)
    caption = plots.caption_of(path)
    return f"![{Path(path).stem}]({rel})" + (f"\n\n*{caption}*" if caption else "")


text = [
    "# RNN ablation study: summary",
    "",
    f"Series: {data['generator']} (length {settings.data_length(data)}, tau {data.get('tau')}, data seeds "
    f"{', '.join(map(str, settings.data_seeds(cfg)))}); "
    f"train on the first {data['train']} samples, validate on the next {data['validation']}, "
    f"test on the {data.get('test', 0)} after; the tutorial's continuation: {cfg['horizon']} steps after the "
    "training segment.",
    f"Backend: {cfg['backend']}. Seeds: {', '.join(map(str, cfg['seeds']))}. "
    f"Optimizers: {', '.join(cfg['optimizers'])}. Variants: {snakemake.params.n_variants} "
    f"({snakemake.params.n_jobs} training jobs, one per variant and series). "
    f"Runs: {len(runs)} (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ").",
    "",
    "Status meanings: " + "; ".join(f"`{k}`: {v}" for k, v in study.STATUSES.items()) + ".",
    "",
    "## The tutorial's numbers against the baseline",
    "",
    study.tutorial_comparison(runs),
    "",
    "## What makes the network generate?",
    "",
    findings.generation_question(table, runs, io.load_lyapunov(snakemake.input.lyapunov),
                                 io.load_json(snakemake.input.attractor[1])["floors"] if snakemake.input.attractor
                                 else None, (cfg.get("generation") or {}).get("horizon")),
    "",
    "## Is each model chaotic like the data?",
    "",
    findings.exponent_question(table, runs, io.load_json(snakemake.input.lyapunov),
                               (cfg.get("generation") or {}).get("horizon")) or "No models' exponents measured.",
    "",
    "## Ablations (mean ± 95% CI over seeds; diverged runs counted, not averaged)",
    "",
    Path(snakemake.input.markdown).read_text(),
    "## Figures",
    "",
    *[link(p) + "\n" for p in snakemake.input.figures],
    "## Compute",
    "",
    f"Wall seconds summed over the {len(wall)} training jobs ({sum(wall.values()):.0f} s), by phase: "
    + ", ".join(f"{k} {v:.0f}" for k, v in compute.items()) + "."
    + (f" {missing} of the {len(records)} jobs' benchmark records are missing (deleted): their wall time, and "
       "the start-up share, are left out until those jobs run again." if missing else ""),
    "",
]
io.save_text(out, "\n".join(text))
io.save_text(snakemake.output.html, findings.html_page("\n".join(text), "RNN ablation study: summary"))
