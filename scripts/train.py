"""Rule train: every seed x optimizer of one variant on one series, stacked in one compiled graph, then scored."""
import logging

from rnn import backends, experiment, io

io.job_logging(snakemake.log[0])
arguments, inputs, out_files = dict(snakemake.params.arguments), snakemake.input, snakemake.output
logging.getLogger("rnn").info("variant %s, data seed %s: %s", snakemake.wildcards.variant,
                              snakemake.wildcards.data_seed, backends.describe())
if arguments["longterm"] is not None:
    arguments["longterm"] = {"settings": arguments["longterm"], "embedding": io.load_json(inputs.attractor[1]),
                             "reference": io.load_npz(inputs.attractor[0], ["series"])["series"]}
result = experiment.run_variant(io.load_series(inputs.series), lyapunov=io.load_lyapunov(inputs.lyapunov), **arguments)
experiment.save_outputs(result, arguments["seeds"], out_files.metrics, out_files.curves, out_files.params,
                        out_files.predictions)
