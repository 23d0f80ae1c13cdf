"""Rule train: every seed x optimizer of one variant, stacked in one compiled graph, then scored."""
import logging

from rnn import backends, experiment, io

io.job_logging(snakemake.log[0])
p, out_files = snakemake.params, snakemake.output
logging.getLogger("rnn").info("variant %s: %s", snakemake.wildcards.variant, backends.describe())
result = experiment.run_variant(
    io.load_series(snakemake.input.series), p.settings, seeds=p.seeds, optimizers=p.optimizers,
    backend=p.backend, generation=p.generation, lyapunov=io.load_lyapunov(snakemake.input.lyapunov),
    log_every=p.curve_every, **p.segments,
)
experiment.save_outputs(result, p.seeds, out_files.metrics, out_files.curves, out_files.params,
                        out_files.predictions)
