# Seed model, then one continued-pretraining job per shard (the only GPU-heavy stage).

if CFG["model"]["source"] == "pretrain":

    rule seed_model:
        input:
            manifest=rules.split_corpus.output.manifest,
            tokenizer=TOKENIZER,
        output:
            directory(SEED_MODEL),
        params:
            args=args(
                tokenizer=TOKENIZER, seed_tokens=f"{CORPUS}/tokens/seed.npy", out=SEED_MODEL,
                architecture={k: v for k, v in CFG["model"].items() if k not in ("source", "path")},
                training=CFG["seed_training"]),
        threads: CFG["runtime"]["seed_threads"]
        resources:
            gpu=GPU,
            mem_mb=8000,
            runtime=240,
        log:
            "logs/seed_model.log",
        shell:
            "python workflow_scripts/train_seed.py {params.args:q} {threads} > {log} 2>&1"


rule train_shard:
    input:
        manifest=rules.split_corpus.output.manifest,
        seed=SEED_MODEL,
    output:
        directory(f"{MODELS}/shards/{{shard}}"),
    params:
        args=lambda wc, output: args(
            seed=SEED_MODEL, sources=[train_tokens(wc.shard)], training=CFG["shard_training"],
            context=CFG["model"]["context"], out=output[0], label=wc.shard),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        "logs/train_shard/{shard}.log",
    shell:
        "python workflow_scripts/continue_pretraining.py {params.args:q} {threads} > {log} 2>&1"
