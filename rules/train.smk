# Seed model, then one continued-pretraining job per shard (the only GPU-heavy stage).
# Training jobs keep a resumable checkpoint beside their output (`<out>.resume`), so a job
# killed or preempted continues where it stopped when it is run again.

if CFG["model"]["source"] == "pretrain":

    rule seed_model:
        input:
            foundation=FOUNDATION_RECORD,
            manifests=[manifest(s) for s in FOUNDATION],
            tokenizer=TOKENIZER,
        output:
            directory(SEED_MODEL),
        params:
            args=args(
                tokenizer=TOKENIZER, seed_tokens=[f"{CORPUS}/{s}/tokens/seed.npy" for s in FOUNDATION], out=SEED_MODEL,
                architecture={k: v for k, v in CFG["model"].items() if k not in ("source", "path")},
                training=training_settings("seed_training")),
            how=lambda wc, output: run_settings("seed_training"),
        threads: CFG["runtime"]["seed_threads"]
        resources:
            gpu=GPU,
            mem_mb=8000,
            runtime=240,
        log:
            f"{LOGS}/seed_model.log",
        shell:
            f"{script('train_seed')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"

elif PRETRAINED["convert"]:

    rule convert_seed:
        output:
            directory(SEED_MODEL),
        params:
            args=args(model=CFG["model"]["path"], tokenizer=shardmix_config.tokenizer_dir(CFG, R), out=SEED_MODEL),
        resources:
            mem_mb=16000,
            runtime=60,
        log:
            f"{LOGS}/convert_seed.log",
        shell:
            f"{script('convert_seed')} {{params.args:q}} > {{log}} 2>&1"


rule train_shard:
    input:
        data=lambda wc: shard_data(wc.shard),
        seed=SEED_MODEL,
    output:
        directory(f"{MODELS}/shards/{{shard}}"),
    wildcard_constraints:
        shard="[^/]+",
    params:
        args=lambda wc: args(**shard_training(wc.shard)),
        how=lambda wc, output: run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{LOGS}/train_shard/{{shard}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"
