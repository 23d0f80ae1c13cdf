"""Rule verify: the rerun's runs.csv against the published one; the report to the terminal and the log."""
import sys

from rnn import verify

sys.exit(verify.main([snakemake.input.rerun, snakemake.params.published, "--published-env",
                      snakemake.params.environment, "--report", snakemake.log[0]]))
