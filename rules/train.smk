# Seed model, then one continued-pretraining job per shard (the only GPU-heavy stage).
# Training jobs keep a resumable checkpoint beside their output (`<out>.resume`), so a job
# killed or preempted continues where it stopped when it is run again.

if CFG["model"]["source"] == "pretrain":

    rule train_seed:
        input:
            foundation=L.foundation_record,
            manifests=[L.manifest(s) for s in PLAN.foundation],
            tokenizer=PLAN.tokenizer,
        output:
            directory(PLAN.seed_model),
        params:
            args=PLAN.seed_args(),
            how=lambda wc, output: PLAN.run_settings("seed_training"),
        threads: CFG["runtime"]["seed_threads"]
        resources:
            gpu=GPU,
            mem_mb=8000,
            runtime=240,
        log:
            f"{L.logs}/train_seed.log",
        shell:
            f"{script('train_seed')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"

elif PLAN.pretrained["convert"]:

    rule convert_seed:
        output:
            directory(PLAN.seed_model),
        params:
            args=args(model=CFG["model"]["path"], tokenizer=shardmix_config.tokenizer_dir(CFG, RESULTS), out=PLAN.seed_model),
        resources:
            mem_mb=16000,
            runtime=60,
        log:
            f"{L.logs}/convert_seed.log",
        shell:
            f"{script('convert_seed')} {{params.args:q}} > {{log}} 2>&1"


def shard_inputs(wildcards):
    force_rebuilds()
    return {"data": PLAN.shard_data(wildcards.shard), "seed": PLAN.seed_model}


rule train_shard:
    input:
        unpack(shard_inputs),
    output:
        directory(L.shard_model("{shard}")),
    wildcard_constraints:
        shard="[^/]+",
    params:
        args=lambda wc: args(**PLAN.shard_training(wc.shard).args()),
        how=lambda wc, output: PLAN.run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{L.logs}/train_shard/{{shard}}.log",
    benchmark:
        f"{L.benchmarks}/train_shard/{{shard}}.tsv"
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"
