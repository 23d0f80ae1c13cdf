"""Rule lyapunov: the largest Lyapunov exponent of the configured generator, measured (or as given)."""
import logging

from rnn import io, lyapunov

io.job_logging(snakemake.log[0])
p = snakemake.params
record = lyapunov.exponent_record(p.generator, p.tau, p.given)
logging.getLogger("rnn").info("largest Lyapunov exponent: %s", record)
io.save_json(snakemake.output[0], record)
