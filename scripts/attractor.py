"""Rule attractor: a long reference trajectory of the generator, its delay embedding, and the long-term
measures' floor and ceilings against it (rnn/longterm.py)."""
import logging

from rnn import io, longterm

io.job_logging(snakemake.log[0])
p = snakemake.params
built = longterm.reference_of(p.generator, p.longterm, p.tau)
settings, reference, embedding = built["settings"], built["reference"], built["embedding"]
logging.getLogger("rnn").info("embedding: lag %d, dim %d", embedding["lag"], embedding["dim"])
prepared = longterm.prepare(reference, settings, embedding)
rows = longterm.floors_and_ceilings(prepared, p.generator, tau=p.tau)
for row in rows:
    logging.getLogger("rnn").info("%s", row)
io.save_npz(snakemake.output.reference, series=reference)
io.save_json(snakemake.output.record, {"generator": p.generator, "tau": p.tau, "settings": settings, **embedding,
                                       "peak_period": 1 / prepared.peak, "floors": rows})
