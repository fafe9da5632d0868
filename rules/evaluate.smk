# Score batches of models (seed, shard models, merged mixtures, really trained mixtures): each
# job builds every model of its batch once and scores it on every eval set of one group.


def eval_inputs(wildcards):
    force_rebuilds()
    return PLAN.eval_inputs(wildcards.group, wildcards.batch)


rule evaluate_batch:
    input:
        unpack(eval_inputs),
    output:
        L.score_batch("{group}", "{batch}"),
    wildcard_constraints:
        group="g[0-9]+",
        batch="[^/]+",
    params:
        args=lambda wc: PLAN.eval_args(wc.group, wc.batch),
        how=lambda wc, output: PLAN.run_settings("evaluation"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=2000 + CFG["runtime"]["resident_mb"],
        runtime=60,
    log:
        f"{L.logs}/evaluate/{{group}}/{{batch}}.log",
    benchmark:
        f"{L.benchmarks}/evaluate/{{group}}/{{batch}}.tsv"
    shell:
        f"{script('evaluate_batch')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


rule record_eval_groups:
    output:
        L.eval_groups_record,
    params:
        # which eval sets joined the run together; later runs keep these groups
        args=lambda wc: PLAN.eval_groups_record(),
    log:
        f"{L.logs}/record_eval_groups.log",
    shell:
        f"{script('write_record')} {{params.args:q}} > {{log}} 2>&1"
