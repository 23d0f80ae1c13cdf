"""Rule lyapunov: the largest Lyapunov exponent of the configured generator, measured (or as given)."""
import logging

from rnn import io, lyapunov

io.job_logging(snakemake.log[0])
p = snakemake.params
if p.given is not None:
    record = {"generator": p.generator, "lyapunov_per_sample": float(p.given), "lyapunov_time_steps": 1 / p.given,
              "method": "given in the config (data.lyapunov)"}
else:
    record = lyapunov.largest_exponent(p.generator, tau=p.tau)
logging.getLogger("rnn").info("largest Lyapunov exponent: %s", record)
io.save_json(snakemake.output[0], record)
