# Corpus sources -> tokenizer -> shards: each source tokenized once into flat token files.
# A user's source file is no input of any rule: its checksum stands for it (rules/common.smk
# checks it before any job runs), so moving or touching it reruns nothing. Only the demo's
# corpus, which a rule builds, is an (`ancient`) input.


def source_input(name):
    path = SOURCES[name]["path"]
    return [ancient(path)] if path.startswith(DEMO_CORPUS + "/") else []



rule demo_corpus:
    output:
        corpus=f"{DEMO_CORPUS}/corpus.jsonl.gz",
        poems=f"{DEMO_CORPUS}/eval/shakespeare_poems.jsonl",
        wisdom=f"{DEMO_CORPUS}/eval/kjv_wisdom.jsonl",
    params:
        args=args(sources=CFG["demo_sources"], corpus=f"{DEMO_CORPUS}/corpus.jsonl.gz",
                  eval_dir=f"{DEMO_CORPUS}/eval"),
    log:
        f"{LOGS}/demo_corpus.log",
    shell:
        f"{script('build_demo_corpus')} {{params.args:q}} > {{log}} 2>&1"


rule record_foundation:
    output:
        FOUNDATION_RECORD,
    params:
        # what the tokenizer and the seed are built from; a new source leaves this unchanged
        args=args(record={"sources": FOUNDATION}, out=FOUNDATION_RECORD),
    log:
        f"{LOGS}/record_foundation.log",
    shell:
        f"{script('write_record')} {{params.args:q}} > {{log}} 2>&1"


if CFG["tokenizer"]["source"] == "train":

    rule train_tokenizer:
        input:
            foundation=FOUNDATION_RECORD,
            sources=[p for s in FOUNDATION for p in source_input(s)],
        output:
            directory(TOKENIZER),
        params:
            compared=args(sources=[read_spec(s) for s in FOUNDATION], vocab_size=CFG["tokenizer"]["vocab_size"],
                          max_train_bytes=CFG["tokenizer"]["max_train_bytes"]),
            # paths and sharding are not compared (derived: it takes `output`)
            args=lambda wc, output: args(sources=[SOURCES[s] for s in FOUNDATION], out=output[0],
                                         vocab_size=CFG["tokenizer"]["vocab_size"],
                                         max_train_bytes=CFG["tokenizer"]["max_train_bytes"]),
        resources:
            mem_mb=8000,
            runtime=60,
        log:
            f"{LOGS}/train_tokenizer.log",
        shell:
            f"{script('train_tokenizer')} {{params.args:q}} > {{log}} 2>&1"


checkpoint split_source:
    input:
        corpus=lambda wc: source_input(wc.source),
        tokenizer=TOKENIZER,
    output:
        manifest=f"{CORPUS}/{{source}}/manifest.json",
        tokens=directory(f"{CORPUS}/{{source}}/tokens"),
    wildcard_constraints:
        source="[^/]+",
    params:
        compared=lambda wc: args(**split_spec(wc.source)),
        # the path is not compared (derived: it takes `output`); the checksum stands for the bytes
        args=lambda wc, output: args(source=SOURCES[wc.source], tokenizer=TOKENIZER, tokens_dir=output.tokens,
                                     manifest=output.manifest),
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        f"{LOGS}/split_source/{{source}}.log",
    shell:
        f"{script('split_source')} {{params.args:q}} > {{log}} 2>&1"


rule shard_sizes:
    input:
        [manifest(s) for s in SOURCES],
    output:
        report(f"{CORPUS}/shards.csv", caption="../report/shards.rst", category="0. Corpus"),
    params:
        args=args(include={s: SOURCES[s]["sharding"]["include"] for s in SOURCES},
                  manifests={s: manifest(s) for s in SOURCES}, budget=CFG["shard_training"]["tokens"],
                  context=CFG["model"]["context"], min_tokens=CFG["evaluation"]["min_tokens"],
                  out=f"{CORPUS}/shards.csv"),
    log:
        f"{LOGS}/shard_sizes.log",
    shell:
        f"{script('shard_sizes')} {{params.args:q}} > {{log}} 2>&1"


def extra_eval_spec(name):
    return next(e for e in CFG["eval_sets"] if e["name"] == name)


rule tokenize_eval_set:
    input:
        data=lambda wc: extra_eval_spec(wc.name)["path"],
        tokenizer=TOKENIZER,
    output:
        f"{R}/eval_sets/{{name}}.npy",
    params:
        args=lambda wc: args(spec=extra_eval_spec(wc.name), tokenizer=TOKENIZER, out=f"{R}/eval_sets/{wc.name}.npy"),
    log:
        f"{LOGS}/tokenize_eval_set/{{name}}.log",
    shell:
        f"{script('tokenize_eval_set')} {{params.args:q}} > {{log}} 2>&1"
