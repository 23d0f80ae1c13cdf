"""Rule train: every seed x optimizer of one variant on one series, stacked in one compiled graph, then scored."""
import logging

from rnn import backends, experiment, io

io.job_logging(snakemake.log[0])
p, inputs, out_files = snakemake.params, snakemake.input, snakemake.output
logging.getLogger("rnn").info("variant %s, data seed %s: %s", snakemake.wildcards.variant,
                              snakemake.wildcards.data_seed, backends.describe())
longterm = None
if p.longterm is not None:
    record = io.load_json(inputs.attractor[1])
    longterm = {"settings": p.longterm, "embedding": record,
                "reference": io.load_npz(inputs.attractor[0], ["series"])["series"]}
result = experiment.run_variant(
    io.load_series(inputs.series), p.settings, seeds=p.seeds, optimizers=p.optimizers,
    backend=p.backend, generation=p.generation, lyapunov=io.load_lyapunov(inputs.lyapunov),
    longterm=longterm, log_every=p.curve_every, **p.segments,
)
experiment.save_outputs(result, p.seeds, out_files.metrics, out_files.curves, out_files.params,
                        out_files.predictions)
