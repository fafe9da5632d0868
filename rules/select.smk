# Data selection toward a target (GOT-D and baselines): a candidate pool -> units -> embeddings
# (cached, whatever the targets) -> one selected shard per method and target, trained by rule
# train_shard and scored alone and in mixtures like any other -> results/selection/summary.csv.


def pool_input():
    path = CFG["selection"]["pool"]["path"]
    return [ancient(path)] if path.startswith(DEMO_CORPUS + "/") else []


def pool_spec():
    """What decides the candidates. The pool's path is not part of it (its checksum is recorded
    in pool.json and checked when the workflow starts)."""
    spec = {k: v for k, v in CFG["selection"]["pool"].items() if k != "path"}
    return {**spec, "unit_tokens": CFG["selection"]["unit_tokens"]}


rule selection_pool:
    input:
        pool=lambda wc: pool_input(),
        tokenizer=TOKENIZER,
    output:
        units=SELECTION_UNITS,
        info=SELECTION_POOL_INFO,
    params:
        compared=lambda wc: args(**pool_spec()),
        args=lambda wc, output: args(pool=CFG["selection"]["pool"], unit_tokens=CFG["selection"]["unit_tokens"],
                                     tokenizer=TOKENIZER, units=output.units, info=output.info),
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        f"{LOGS}/selection/pool.log",
    shell:
        f"{script('selection_pool')} {{params.args:q}} > {{log}} 2>&1"


rule selection_embed:
    input:
        units=SELECTION_UNITS,
        seed=SEED_MODEL,
        tokenizer=TOKENIZER,
    output:
        vectors=f"{SELECTION}/pool/embeddings.npy",
        info=f"{SELECTION}/pool/embeddings.json",
    params:
        args=lambda wc: args(seed=SEED_MODEL, tokenizer=TOKENIZER, units=SELECTION_UNITS,
                             encoder=CFG["selection"]["embedding"]["model"],
                             batch_size=CFG["selection"]["embedding"]["batch_size"],
                             out=f"{SELECTION}/pool/embeddings.npy", info=f"{SELECTION}/pool/embeddings.json"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{LOGS}/selection/embed.log",
    shell:
        f"{script('selection_embed')} {{params.args:q}} {{threads}} > {{log}} 2>&1"


def select_inputs(wildcards):
    return {"units": SELECTION_UNITS, "embeddings": f"{SELECTION}/pool/embeddings.npy", "seed": SEED_MODEL,
            "tokenizer": TOKENIZER, "protected": [manifest(s) for s in SOURCES] +
            [f"{R}/eval_sets/{e['name']}.npy" for e in CFG["eval_sets"]]}


rule select_shard:
    input:
        unpack(select_inputs),
    output:
        directory(f"{SELECTION}/shards/{{shard}}"),
    wildcard_constraints:
        shard="[^/]+",
    params:
        args=lambda wc: args(
            shard=wc.shard, method=selection_shards()[wc.shard]["method"],
            target=selection_shards()[wc.shard]["target"],
            target_tokens=eval_sets()[selection_shards()[wc.shard]["target"]],
            protected=protected_files(), overlap_ngram=CFG["selection"]["overlap_ngram"],
            tokens=CFG["selection"]["tokens"], unit_tokens=CFG["selection"]["unit_tokens"],
            ot=CFG["selection"]["ot"], seed_value=CFG["selection"]["seed"],
            pool=pool_spec(),
            encoder=CFG["selection"]["embedding"]["model"], batch_size=CFG["selection"]["embedding"]["batch_size"],
            units=SELECTION_UNITS, pool_info=SELECTION_POOL_INFO, embeddings=f"{SELECTION}/pool/embeddings.npy",
            embed_info=f"{SELECTION}/pool/embeddings.json", seed=SEED_MODEL, tokenizer=TOKENIZER,
            out=f"{SELECTION}/shards/{wc.shard}"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{LOGS}/selection/{{shard}}.log",
    shell:
        f"{script('select_shard')} {{params.args:q}} {{threads}} > {{log}} 2>&1"


rule selection_summary:
    input:
        scores=f"{R}/scores.csv",
        shards=lambda wc: [f"{SELECTION}/shards/{s}" for s in selection_shards()],
    output:
        csv=report(f"{SELECTION}/summary.csv", caption="../report/selection_summary.rst", category="4. Selection"),
        plots=[report(f"{SELECTION}/{t['name']}.png", caption="../report/selection_plot.rst",
                      category="4. Selection") for t in CFG["selection"]["targets"]],
    params:
        args=lambda wc: args(
            scores=f"{R}/scores.csv", selections=selection_shards(), shards_dir=f"{SELECTION}/shards",
            method=METHODS[0]["label"], out=f"{SELECTION}/summary.csv",
            plots={t["name"]: f"{SELECTION}/{t['name']}.png" for t in CFG["selection"]["targets"]}),
    log:
        f"{LOGS}/selection/summary.log",
    shell:
        f"{script('selection_summary')} {{params.args:q}} > {{log}} 2>&1"
