"""Rule aggregate: per-job metrics -> runs.csv, ablation.csv, ablation.md."""
from pathlib import Path

import pandas as pd

from rnn import io, study

io.job_logging(snakemake.log[0])
frames = []
for path in snakemake.input.metrics:
    folder = Path(path).parent  # results/runs/<variant>/data-<seed>/metrics.csv
    name, data_seed = folder.parent.relative_to("results/runs").as_posix(), int(folder.name.removeprefix("data-"))
    frame = io.load_csv(path, ["optimizer", "seed", "status", *study.METRICS[:2]])
    meta = snakemake.params.variants[name]
    frames.append(frame.assign(variant=name, base=meta["base"], axis=meta["axis"], value=meta["value"],
                               data_seed=data_seed, backend=snakemake.params.backend, **meta["settings"]))
runs = pd.concat(frames, ignore_index=True)
# every row says what was run: the variant's full settings follow its name
first = ["variant", "base", "axis", "value", "data_seed", "optimizer", "seed", "backend", "status", *study.BASELINE]
runs = runs[first + [c for c in runs.columns if c not in first]]
table = study.ablation_table(runs)
io.save_csv(snakemake.output.runs, runs)
io.save_csv(snakemake.output.ablation, table)
io.save_text(snakemake.output.markdown, study.ablation_markdown(table, runs=runs))
