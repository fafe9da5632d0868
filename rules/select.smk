# Data selection toward a target (GOT-D and baselines): a candidate pool -> units -> embeddings
# (cached, whatever the targets) -> one selected shard per method and target, trained by rule
# train_shard and scored alone and in mixtures like any other -> results/selection/summary.csv.


rule selection_pool:
    input:
        pool=lambda wc: [ancient(p) for p in PLAN.built(CFG["selection"]["pool"]["path"])],
        tokenizer=PLAN.tokenizer,
    output:
        units=L.selection_units,
        info=L.selection_pool_info,
    params:
        compared=lambda wc: args(**PLAN.pool_spec()),
        args=lambda wc, output: args(pool=CFG["selection"]["pool"], unit_tokens=CFG["selection"]["unit_tokens"],
                                     tokenizer=PLAN.tokenizer, units=output.units, info=output.info),
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        f"{L.logs}/selection/pool.log",
    shell:
        f"{script('selection_pool')} {{params.args:q}} > {{log}} 2>&1"


rule selection_embed:
    input:
        units=L.selection_units,
        seed=PLAN.seed_model,
        tokenizer=PLAN.tokenizer,
    output:
        vectors=f"{L.selection}/pool/embeddings.npy",
        info=f"{L.selection}/pool/embeddings.json",
    params:
        args=lambda wc: args(seed=PLAN.seed_model, tokenizer=PLAN.tokenizer, units=L.selection_units,
                             encoder=CFG["selection"]["embedding"]["model"],
                             batch_size=CFG["selection"]["embedding"]["batch_size"],
                             out=f"{L.selection}/pool/embeddings.npy", info=f"{L.selection}/pool/embeddings.json"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{L.logs}/selection/embed.log",
    shell:
        f"{script('selection_embed')} {{params.args:q}} {{threads}} > {{log}} 2>&1"


def select_inputs(wildcards):
    return PLAN.select_inputs()


rule select_shard:
    input:
        unpack(select_inputs),
    output:
        directory(L.selected_shard("{shard}")),
    wildcard_constraints:
        shard="[^/]+",
    params:
        args=lambda wc: args(**PLAN.select_args(wc.shard)),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{L.logs}/selection/{{shard}}.log",
    shell:
        f"{script('select_shard')} {{params.args:q}} {{threads}} > {{log}} 2>&1"


rule selection_summary:
    input:
        scores=lambda wc: PLAN.scores_table(),
        shards=lambda wc: [f"{L.selection}/shards/{s}" for s in PLAN.selection_shards()],
    output:
        csv=report(f"{L.selection}/summary.csv", caption="../report/selection_summary.rst", category="4. Selection"),
        plots=[report(f"{L.selection}/{t['name']}.png", caption="../report/selection_plot.rst",
                      category="4. Selection") for t in CFG["selection"]["targets"]],
    params:
        args=lambda wc: args(**PLAN.selection_summary_args()),
    log:
        f"{L.logs}/selection/summary.log",
    shell:
        f"{script('selection_summary')} {{params.args:q}} > {{log}} 2>&1"
