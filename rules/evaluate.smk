# Score batches of models (seed, shard models, merged mixtures) on one eval set per job.


def eval_set_tokens(name):
    return eval_sets()[name]


def eval_inputs(wildcards):
    extra = {e["name"] for e in CFG["eval_sets"]}
    return {
        "models": sorted({d for entry in batches()[wildcards.batch] for d in entry["dirs"]}),
        # a held-out set lives in its source's token folder; that source's manifest stands for it
        "data": eval_set_tokens(wildcards.eval_set) if wildcards.eval_set in extra
        else manifest(shard_source(wildcards.eval_set)),
        "tokenizer": TOKENIZER,
    }


rule evaluate_batch:
    input:
        unpack(eval_inputs),
    output:
        f"{SCORES}/{{eval_set}}/{{batch}}.csv",
    wildcard_constraints:
        eval_set="[^/]+",
        batch="[^/]+",
    params:
        args=lambda wc: args(
            models=batches()[wc.batch], eval_set=wc.eval_set, eval_tokens=eval_set_tokens(wc.eval_set),
            tokenizer=TOKENIZER, max_tokens=CFG["evaluation"]["max_tokens"],
            min_tokens=CFG["evaluation"]["min_tokens"], batch_windows=CFG["evaluation"]["batch_windows"],
            context=CFG["model"]["context"], out=f"{SCORES}/{wc.eval_set}/{wc.batch}.csv"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=4000,
        runtime=60,
    log:
        "logs/evaluate/{eval_set}/{batch}.log",
    benchmark:
        "benchmarks/evaluate/{eval_set}/{batch}.tsv"
    shell:
        f"{script('evaluate_batch')} {{params.args:q}} {{threads}} > {{log}} 2>&1"
