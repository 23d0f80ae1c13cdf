"""Rule publish: the findings block and its figures under results/published/, spliced into README.md."""
import os
import shutil
from pathlib import Path

from rnn import findings, io

io.job_logging(snakemake.log[0])
runs = io.load_csv(snakemake.input.runs, ["variant", "optimizer", "status"])
table = io.load_csv(snakemake.input.ablation, ["variant", "axis", "value", "optimizer"])
table["value"] = table["value"].fillna("").astype(str)
out = Path(snakemake.output.findings)
copies = {}
for src, dst in zip(snakemake.input.figures, snakemake.output.figures):
    with io.atomic(dst, "wb") as f, open(src, "rb") as s:
        shutil.copyfileobj(s, f)
    copies[Path(src).stem] = dst  # ablation/<axis>.png is keyed by its axis


def block(base):
    """The findings block with figure links relative to the folder of the file that shows it."""
    figures = {name: os.path.relpath(path, base) for name, path in copies.items()}
    return findings.findings_markdown(table, runs, snakemake.params.baseline, snakemake.params.lyapunov, figures)


io.save_text(out, block(out.parent) + "\n")
readme = Path(snakemake.params.readme)
io.save_text(readme, findings.splice(readme.read_text(), block(readme.parent)))
