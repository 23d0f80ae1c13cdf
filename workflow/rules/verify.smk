# Not part of the default study: `snakemake --cores 4 verify` brings results/tables/runs.csv up to
# date, then checks it against the published study, numbers and conclusions (docs/verify.md): bit for
# bit on the published machine where the code is deterministic, elsewhere as a second sample of the same
# experiment. It prints the report (also kept as its log) and fails naming every number or conclusion
# that differs beyond sampling. It has no output, so it runs whenever it is asked for; nor a benchmark:,
# which Snakemake would take for one (a local rule needs no cluster sizing). The published files are
# params, not inputs: as inputs, Snakemake would first regenerate them from the rerun (they are outputs
# of publish).


rule verify:
    input:
        rerun=rules.aggregate.output.runs,
    log:
        "logs/verify.log",
    localrule: True
    conda:
        "../envs/rnn.yaml"
    params:
        published=rules.publish.output.runs,
        environment=rules.publish.output.environment,
        floors=rules.publish.output.attractor,
    script:
        "../../scripts/verify.py"
