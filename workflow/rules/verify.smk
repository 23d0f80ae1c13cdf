# Not part of the default study: `snakemake --cores 4 verify` brings results/tables/runs.csv up to
# date, then compares it with the published one (tolerances: README, "Checking a rerun"); it prints
# the report (also kept as its log) and fails naming every difference beyond tolerance. It has no
# output, so it runs whenever it is asked for; nor a benchmark:, which Snakemake would take for one
# (a local rule needs no cluster sizing). The published files are params, not inputs: as inputs,
# Snakemake would first regenerate them from the rerun (they are outputs of publish).


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
    script:
        "../../scripts/verify.py"
