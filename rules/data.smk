# Corpus sources -> tokenizer -> shards: each source tokenized once into flat token files.
# A user's source file is no input of any rule: its checksum stands for it (the planner
# checks it before any job runs), so moving or touching it reruns nothing. Only the demo's
# corpus, which a rule builds, is an (`ancient`) input.


def source_input(name):
    return [ancient(p) for p in PLAN.built(PLAN.sources[name]["path"])]



rule build_demo_corpus:
    output:
        corpus=f"{DEMO_CORPUS}/corpus.jsonl.gz",
        poems=f"{DEMO_CORPUS}/eval/shakespeare_poems.jsonl",
        wisdom=f"{DEMO_CORPUS}/eval/kjv_wisdom.jsonl",
    params:
        args=args(sources=CFG["demo_sources"], corpus=f"{DEMO_CORPUS}/corpus.jsonl.gz",
                  eval_dir=f"{DEMO_CORPUS}/eval"),
    log:
        f"{L.logs}/build_demo_corpus.log",
    shell:
        f"{script('build_demo_corpus')} {{params.args:q}} > {{log}} 2>&1"


rule record_foundation:
    output:
        L.foundation_record,
    params:
        # what the tokenizer and the seed are built from; a new source leaves this unchanged
        args=args(record={"sources": PLAN.foundation}, out=L.foundation_record),
    log:
        f"{L.logs}/record_foundation.log",
    shell:
        f"{script('write_record')} {{params.args:q}} > {{log}} 2>&1"


if CFG["tokenizer"]["source"] == "train":

    rule train_tokenizer:
        input:
            foundation=L.foundation_record,
            sources=[p for s in PLAN.foundation for p in source_input(s)],
        output:
            directory(PLAN.tokenizer),
        params:
            compared=args(sources=[PLAN.read_spec(s) for s in PLAN.foundation], vocab_size=CFG["tokenizer"]["vocab_size"],
                          max_train_bytes=CFG["tokenizer"]["max_train_bytes"]),
            # paths and sharding are not compared (derived: it takes `output`)
            args=lambda wc, output: args(sources=[PLAN.sources[s] for s in PLAN.foundation], out=output[0],
                                         vocab_size=CFG["tokenizer"]["vocab_size"],
                                         max_train_bytes=CFG["tokenizer"]["max_train_bytes"]),
        resources:
            mem_mb=8000,
            runtime=60,
        log:
            f"{L.logs}/train_tokenizer.log",
        shell:
            f"{script('train_tokenizer')} {{params.args:q}} > {{log}} 2>&1"


rule split_part:
    input:
        tokenizer=PLAN.tokenizer,
    output:
        temp(directory(L.split_part("{source}", "{part}"))),
    wildcard_constraints:
        source="[^/]+",
        part="[0-9]+",
    params:
        args=lambda wc, output: args(source=PLAN.sources[wc.source], pieces=PLAN.split_parts(wc.source)[int(wc.part)],
                                     tokenizer=PLAN.tokenizer, out=output[0]),
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    log:
        f"{L.logs}/split_part/{{source}}/{{part}}.log",
    shell:
        # the tokenizer's thread pool sized to the job's cores, so parallel parts do not oversubscribe
        f"RAYON_NUM_THREADS={{threads}} {script('split_part')} {{params.args:q}} > {{log}} 2>&1"


checkpoint split_source:
    input:
        corpus=lambda wc: source_input(wc.source),
        tokenizer=PLAN.tokenizer,
        parts=lambda wc: PLAN.split_part_dirs(wc.source),
    output:
        manifest=L.manifest("{source}"),
        tokens=directory(f"{L.corpus}/{{source}}/tokens"),
    wildcard_constraints:
        source="[^/]+",
    params:
        compared=lambda wc: args(**PLAN.split_spec(wc.source)),
        # the path is not compared (derived: it takes `output`); the checksum stands for the bytes;
        # parts only share out the reading
        args=lambda wc, input, output: args(source=PLAN.sources[wc.source], tokenizer=PLAN.tokenizer,
                                            tokens_dir=output.tokens, manifest=output.manifest,
                                            parts=list(input.parts), pieces=PLAN.split_parts(wc.source)),
    resources:
        mem_mb=3000,
        runtime=120,
    log:
        f"{L.logs}/split_source/{{source}}.log",
    shell:
        f"{script('split_source')} {{params.args:q}} > {{log}} 2>&1"


rule shard_sizes:
    input:
        [L.manifest(s) for s in PLAN.sources],
    output:
        report(f"{L.corpus}/shards.csv", caption="../report/shards.rst", category="5. Corpus"),
    params:
        args=args(include={s: PLAN.sources[s]["sharding"]["include"] for s in PLAN.sources},
                  manifests={s: L.manifest(s) for s in PLAN.sources}, budget=CFG["shard_training"]["tokens"],
                  context=CFG["model"]["context"], min_tokens=CFG["evaluation"]["min_tokens"],
                  out=f"{L.corpus}/shards.csv"),
    log:
        f"{L.logs}/shard_sizes.log",
    shell:
        f"{script('shard_sizes')} {{params.args:q}} > {{log}} 2>&1"


rule tokenize_eval_set:
    input:
        data=lambda wc: PLAN.extra_eval_spec(wc.name)["path"],
        tokenizer=PLAN.tokenizer,
    output:
        L.extra_eval_set("{name}"),
    params:
        args=lambda wc: args(spec=PLAN.extra_eval_spec(wc.name), tokenizer=PLAN.tokenizer,
                             out=L.extra_eval_set(wc.name)),
    log:
        f"{L.logs}/tokenize_eval_set/{{name}}.log",
    shell:
        f"{script('tokenize_eval_set')} {{params.args:q}} > {{log}} 2>&1"
