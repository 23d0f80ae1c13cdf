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
    # every row says what was run: the variant's full settings follow its name
    frames.append(study.run_rows(frame, name, snakemake.params.variants[name], data_seed, snakemake.params.backend))
runs = study.ordered_runs(pd.concat(frames, ignore_index=True))
table = study.ablation_table(runs)
io.save_csv(snakemake.output.runs, runs)
io.save_csv(snakemake.output.ablation, table)
io.save_text(snakemake.output.markdown, study.ablation_markdown(table, runs=runs))
