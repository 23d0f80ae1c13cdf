"""Rule verify: the rerun's runs.csv against the published one; the report to the terminal and the log."""
import os
import sys

from rnn import verify

floors = snakemake.params.floors
floors = [p for p in ([floors] if isinstance(floors, str) else floors) if os.path.exists(p)]  # none without long runs
sys.exit(verify.main([snakemake.input.rerun, snakemake.params.published, "--published-env",
                      snakemake.params.environment, *(["--floors", floors[0]] if floors else []),
                      "--report", snakemake.log[0]]))
