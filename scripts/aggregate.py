"""Rule aggregate: per-variant metrics -> runs.csv, ablation.csv, ablation.md."""
from pathlib import Path

import pandas as pd

from rnn import io, study

io.job_logging(snakemake.log[0])
frames = []
for path in snakemake.input.metrics:
    name = Path(path).parent.name  # results/runs/<variant>/metrics.csv
    frame = io.load_csv(path, ["optimizer", "seed", "status", *study.METRICS[:2]])
    meta = snakemake.params.variants[name]
    frames.append(frame.assign(variant=name, axis=meta["axis"], value=meta["value"],
                               backend=snakemake.params.backend, **meta["settings"]))
runs = pd.concat(frames, ignore_index=True)
# every row says what was run: the variant's full settings follow its name
first = ["variant", "axis", "value", "optimizer", "seed", "backend", "status", *study.BASELINE]
runs = runs[first + [c for c in runs.columns if c not in first]]
table = study.ablation_table(runs)
io.save_csv(snakemake.output.runs, runs)
io.save_csv(snakemake.output.ablation, table)
io.save_text(snakemake.output.markdown, study.ablation_markdown(table))
