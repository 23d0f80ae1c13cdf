"""Rule publish: findings, figures, tables, config and environment under results/published/; the findings'
headline block into README.md."""
import os
from pathlib import Path

import yaml

from rnn import anchors, findings, io, plots, provenance

io.job_logging(snakemake.log[0])
runs = io.load_csv(snakemake.input.runs, ["variant", "optimizer", "status"])
table = io.load_csv(snakemake.input.ablation, ["data_seed", "variant", "base", "axis", "value", "optimizer"])
table["value"] = table["value"].fillna("").astype(str)
runs["value"] = runs["value"].fillna("").astype(str)
out = Path(snakemake.output.findings)
copies, captions = {}, {}
for src, dst in zip(snakemake.input.figures, snakemake.output.figures):
    io.copy_file(src, dst)
    copies[Path(src).stem] = dst  # ablation/<axis>.png is keyed by its axis
    captions[Path(src).stem] = plots.caption_of(dst)
for name in ("runs", "ablation", "lyapunov"):
    io.copy_file(snakemake.input[name], snakemake.output[name])
config = {**snakemake.params.config, "baseline": snakemake.params.baseline}
io.save_text(snakemake.output.config, "# The config of the published study, with every default it ran with.\n"
             + yaml.safe_dump(config, sort_keys=False))
io.save_json(snakemake.output.environment, provenance.environment())
floors = None
if snakemake.input.attractor:  # the reference's embedding, floor and ceilings of the long-term measures
    io.copy_file(snakemake.input.attractor[1], snakemake.output.attractor[0])
    floors = io.load_json(snakemake.input.attractor[1])["floors"]
lyapunov = io.load_lyapunov(snakemake.input.lyapunov)
records = []
for src, dst in zip(snakemake.input.anchors, snakemake.output.anchors):  # Jaeger's protocols, rerun (rule anchors)
    io.copy_file(src, dst)
    records.append(io.load_json(src))
figures = {name: os.path.relpath(path, out.parent) for name, path in copies.items()}
generation = snakemake.params.config.get("generation") or {}
horizon = generation.get("horizon")  # valid times are censored there
ceiling = (findings.validation_ceiling(generation["spacing"], snakemake.params.config["data"]["validation"])
           if generation else None)  # what the validation start points can see
io.save_text(out, findings.findings_markdown(table, runs, snakemake.params.baseline, lyapunov, figures, floors,
                                             captions, horizon, exponent=io.load_json(snakemake.input.lyapunov),
                                             anchors=anchors.findings_text(records), ceiling=ceiling))
readme = Path(snakemake.params.readme)
headline = findings.headline_markdown(table, runs, lyapunov, floors, link=os.path.relpath(out, readme.parent),
                                      horizon=horizon)
io.save_text(readme, findings.splice(readme.read_text(), headline))
