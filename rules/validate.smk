# Validation of the proxy: really train some mixtures and measure how well merged scores predict them.


rule train_full:
    input:
        manifest=rules.split_corpus.output.manifest,
        seed=SEED_MODEL,
    output:
        directory(f"{MODELS}/full/{{mixture}}"),
    wildcard_constraints:
        mixture="[^/]+",
    params:
        # the shuffled union of the shards, each with the shard models' token budget
        args=lambda wc, output: args(
            seed=SEED_MODEL, sources=[train_tokens(s) for s in wc.mixture.split(SEP)],
            training=CFG["shard_training"], context=CFG["model"]["context"], out=output[0],
            label=f"full/{wc.mixture}"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        "logs/train_full/{mixture}.log",
    shell:
        "python workflow_scripts/continue_pretraining.py {params.args:q} {threads} > {log} 2>&1"


rule agreement:
    input:
        f"{R}/scores.csv",
    output:
        agreement=report(f"{R}/validation/agreement.csv", caption="../report/agreement.rst",
                         category="2. Validation"),
        naive=report(f"{R}/validation/agreement_naive.csv", caption="../report/agreement_naive.rst",
                     category="2. Validation"),
        html=report(f"{R}/validation/agreement.html", caption="../report/agreement_html.rst",
                    category="2. Validation"),
        scatter=report(f"{R}/validation/scatter.png", caption="../report/scatter.rst", category="2. Validation"),
        cost=report(f"{R}/validation/cost.png", caption="../report/cost.rst", category="2. Validation"),
    params:
        args=lambda wc, output: args(
            scores=f"{R}/scores.csv", shards=shards(), mixtures=CFG["mixtures"],
            tokens_per_shard=CFG["shard_training"]["tokens"], **dict(output.items())),
    log:
        "logs/agreement.log",
    shell:
        "python workflow_scripts/validate_proxy.py {params.args:q} > {log} 2>&1"
