# Corpus -> tokenizer -> shards: tokenize once into flat token files.


rule demo_corpus:
    output:
        corpus=f"{DEMO_CORPUS}/corpus.jsonl.gz",
        poems=f"{DEMO_CORPUS}/eval/shakespeare_poems.jsonl",
        wisdom=f"{DEMO_CORPUS}/eval/kjv_wisdom.jsonl",
    params:
        args=args(sources=CFG["demo_sources"], corpus=f"{DEMO_CORPUS}/corpus.jsonl.gz",
                  eval_dir=f"{DEMO_CORPUS}/eval"),
    log:
        "logs/demo_corpus.log",
    shell:
        "python workflow_scripts/build_demo_corpus.py {params.args:q} > {log} 2>&1"


if CFG["tokenizer"]["source"] == "train":

    rule train_tokenizer:
        input:
            corpus=CFG["corpus"]["path"],
        output:
            directory(TOKENIZER),
        params:
            args=args(corpus=CFG["corpus"], vocab_size=CFG["tokenizer"]["vocab_size"],
                      max_train_bytes=CFG["tokenizer"]["max_train_bytes"], out=TOKENIZER),
        resources:
            mem_mb=8000,
            runtime=60,
        log:
            "logs/train_tokenizer.log",
        shell:
            "python workflow_scripts/train_tokenizer.py {params.args:q} > {log} 2>&1"


checkpoint split_corpus:
    input:
        corpus=CFG["corpus"]["path"],
        tokenizer=TOKENIZER,
    output:
        manifest=f"{CORPUS}/manifest.json",
        tokens=directory(f"{CORPUS}/tokens"),
    params:
        # `include` only picks among the shards, so adding one never re-splits the corpus
        args=args(corpus=CFG["corpus"], tokenizer=TOKENIZER, tokens_dir=f"{CORPUS}/tokens",
                  manifest=f"{CORPUS}/manifest.json",
                  sharding={k: v for k, v in CFG["sharding"].items() if k != "include"}),
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        "logs/split_corpus.log",
    shell:
        "python workflow_scripts/split_corpus.py {params.args:q} > {log} 2>&1"


def extra_eval_spec(name):
    return next(e for e in CFG["eval_sets"] if e["name"] == name)


rule tokenize_eval_set:
    input:
        data=lambda wc: extra_eval_spec(wc.name)["path"],
        tokenizer=TOKENIZER,
    output:
        f"{R}/eval_sets/{{name}}.npy",
    params:
        args=lambda wc, output: args(spec=extra_eval_spec(wc.name), tokenizer=TOKENIZER, out=output[0]),
    log:
        "logs/tokenize_eval_set/{name}.log",
    shell:
        "python workflow_scripts/tokenize_eval_set.py {params.args:q} > {log} 2>&1"
