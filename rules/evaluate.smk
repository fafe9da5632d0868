# Score batches of models (seed, shard models, merged mixtures, really trained mixtures): each
# job builds every model of its batch once and scores it on every eval set of one group.


def eval_inputs(wildcards):
    force_rebuilds()
    entries = batches()[wildcards.batch]
    return {
        "models": sorted({d for e in entries for d in e["dirs"] + [(e.get("merge") or {}).get("seed")] if d}),
        "data": eval_set_inputs(eval_groups()[wildcards.group]),
        "tokenizer": TOKENIZER,
    }


rule evaluate_batch:
    input:
        unpack(eval_inputs),
    output:
        f"{SCORES}/{{group}}/{{batch}}.csv",
    wildcard_constraints:
        group="g[0-9]+",
        batch="[^/]+",
    params:
        args=lambda wc: args(
            models=batches()[wc.batch], eval_sets={s: eval_set_spec(s) for s in eval_groups()[wc.group]},
            tokenizer=TOKENIZER, max_tokens=CFG["evaluation"]["max_tokens"],
            min_tokens=CFG["evaluation"]["min_tokens"], batch_windows=CFG["evaluation"]["batch_windows"],
            context=CFG["model"]["context"], out=f"{SCORES}/{wc.group}/{wc.batch}.csv"),
        how=lambda wc, output: run_settings("evaluation"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=2000 + CFG["evaluation"]["resident_mb"],
        runtime=60,
    log:
        f"{LOGS}/evaluate/{{group}}/{{batch}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{group}}/{{batch}}.tsv"
    shell:
        f"{script('evaluate_batch')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


rule record_eval_groups:
    output:
        EVAL_GROUPS_RECORD,
    params:
        # which eval sets joined the run together; later runs keep these groups
        args=lambda wc: args(record={"groups": list(eval_groups().values())}, out=EVAL_GROUPS_RECORD),
    log:
        f"{LOGS}/record_eval_groups.log",
    shell:
        f"{script('write_record')} {{params.args:q}} > {{log}} 2>&1"
