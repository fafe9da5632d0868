# Validation of the proxy: really train some mixtures and measure how well merged scores predict them.


rule train_full:
    input:
        manifests=lambda wc: sorted({L.manifest(PLAN.shard_source(s)) for s in naming.members(wc.mixture)}),
        seed=PLAN.seed_model,
    output:
        directory(f"{L.models}/full/{{mixture}}"),
    wildcard_constraints:
        mixture="[^/]+",
    params:
        # the shuffled union of the shards: k members get k shard budgets, each its weight's share
        args=lambda wc: args(**PLAN.full_training(wc.mixture).args()),
        how=lambda wc, output: PLAN.run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{L.logs}/train_full/{{mixture}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


rule agreement:
    input:
        lambda wc: PLAN.scores_table(),
    output:
        agreement=report(f"{R}/validation/agreement.csv", caption="../report/agreement.rst",
                         category="2. Validation"),
        naive=report(f"{R}/validation/agreement_naive.csv", caption="../report/agreement_naive.rst",
                     category="2. Validation"),
        html=report(f"{R}/validation/agreement.html", caption="../report/agreement_html.rst",
                    category="2. Validation"),
        scatter=report(f"{R}/validation/scatter.png", caption="../report/scatter.rst", category="2. Validation"),
        cost=report(f"{R}/validation/cost.png", caption="../report/cost.rst", category="2. Validation"),
        calibration=report(f"{R}/validation/calibration.csv", caption="../report/calibration.rst",
                           category="2. Validation"),
        predictions=report(f"{R}/predictions.csv", caption="../report/predictions.rst", category="2. Validation"),
    params:
        args=lambda wc: args(
            scores=PLAN.scores_table(), shards=list(PLAN.shard_sources()), mixtures=CFG["mixtures"],
            tokens_per_shard=CFG["shard_training"]["tokens"],
            agreement=f"{R}/validation/agreement.csv", naive=f"{R}/validation/agreement_naive.csv",
            html=f"{R}/validation/agreement.html", scatter=f"{R}/validation/scatter.png",
            cost=f"{R}/validation/cost.png", calibration=f"{R}/validation/calibration.csv",
            predictions=f"{R}/predictions.csv", methods=[m["label"] for m in PLAN.methods]),
    log:
        f"{L.logs}/agreement.log",
    shell:
        f"{script('validate_proxy')} {{params.args:q}} > {{log}} 2>&1"


rule record_validation_sample:
    output:
        L.validation_sample,
    params:
        # the sample's picks; later runs keep them while validation.random stays the same
        args=lambda wc: args(record={"random": CFG["validation"]["random"], "picks": PLAN.validation_picks()},
                             out=L.validation_sample),
    log:
        f"{L.logs}/record_validation_sample.log",
    shell:
        f"{script('write_record')} {{params.args:q}} > {{log}} 2>&1"
