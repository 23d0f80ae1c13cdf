"""Rule anchors: the published protocols of one protocol file, run and scored by NRMSE84 (rnn.anchors)."""
import logging

from rnn import anchors, io

io.job_logging(snakemake.log[0])
record = anchors.run(snakemake.params.protocols)
log = logging.getLogger("rnn")
for r in record["protocols"]:
    log.info("%s: NRMSE84 median %.3g, worst %.3g over %d network seeds (paper %.3g)", r["name"],
             r["nrmse84_median"], r["nrmse84_worst"], len(r["seeds"]), r["paper"]["nrmse84"])
log.info("%s: %.1f s CPU", record["name"], record["cpu_seconds"])
io.save_json(snakemake.output[0], record)
