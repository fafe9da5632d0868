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


rule train_fixed:
    input:
        manifests=lambda wc: sorted({L.manifest(PLAN.shard_source(s)) for s in naming.members(wc.mixture)}),
        seed=PLAN.seed_model,
    output:
        directory(f"{L.models}/fixed{{total}}/{{mixture}}"),
    wildcard_constraints:
        total="[0-9]+",
        mixture="[^/]+",
    params:
        # one total for the mixture, each member its weight's share
        args=lambda wc: args(**PLAN.fixed_training(wc.mixture, int(wc.total)).args()),
        how=lambda wc, output: PLAN.run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{L.logs}/train_fixed/{{total}}/{{mixture}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


rule token_nll:
    input:
        model=lambda wc: PLAN.layout.shard_model(wc.shard),
        data=lambda wc: PLAN.view().group_inputs(wc.group),
    output:
        L.token_nll("{group}", "{shard}"),
    wildcard_constraints:
        group="g[0-9]+",
        shard="[^/]+",
    params:
        args=lambda wc: PLAN.token_nll_args(wc.group, wc.shard),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=4000,
        runtime=60,
    log:
        f"{L.logs}/token_nll/{{group}}/{{shard}}.log",
    shell:
        f"{script('token_nll')} {{params.args:q}} {{threads}} > {{log}} 2>&1"


rule validate_proxy:
    input:
        scores=lambda wc: PLAN.scores_table(),
        ensemble=lambda wc: PLAN.token_nll_files(),
    output:
        agreement=report(f"{RESULTS}/validation/agreement.csv", caption="../report/agreement.rst",
                         category="2. Validation"),
        warnings=report(f"{RESULTS}/validation/warnings.txt", caption="../report/warnings.rst",
                        category="0. Answers"),
        regression=report(f"{RESULTS}/validation/regression.csv", caption="../report/regression.rst",
                          category="2. Validation"),
        pairs=report(f"{RESULTS}/validation/pairs.csv", caption="../report/pairs.rst", category="2. Validation"),
        html=report(f"{RESULTS}/validation/agreement.html", caption="../report/agreement_html.rst",
                    category="2. Validation"),
        scatter=report(f"{RESULTS}/validation/scatter.png", caption="../report/scatter.rst", category="2. Validation"),
        cost=report(f"{RESULTS}/validation/cost.png", caption="../report/cost.rst", category="2. Validation"),
        calibration=report(f"{RESULTS}/validation/calibration.csv", caption="../report/calibration.rst",
                           category="2. Validation"),
        predictions=report(f"{RESULTS}/predictions.csv", caption="../report/predictions.rst", category="2. Validation"),
    params:
        args=lambda wc: args(
            scores=PLAN.scores_table(), shards=list(PLAN.shard_sources()), mixtures=CFG["mixtures"],
            tokens_per_shard=CFG["shard_training"]["tokens"],
            agreement=f"{RESULTS}/validation/agreement.csv", warnings=f"{RESULTS}/validation/warnings.txt",
            regression=f"{RESULTS}/validation/regression.csv", pairs=f"{RESULTS}/validation/pairs.csv", fixed_budget=CFG["validation"]["fixed_budget"],
            ensemble_dir=L.ensemble, groups=PLAN.eval_groups(), seed_dir=PLAN.seed_model,
            html=f"{RESULTS}/validation/agreement.html", scatter=f"{RESULTS}/validation/scatter.png",
            cost=f"{RESULTS}/validation/cost.png", calibration=f"{RESULTS}/validation/calibration.csv",
            predictions=f"{RESULTS}/predictions.csv", methods=[m["label"] for m in PLAN.methods]),
    log:
        f"{L.logs}/validate_proxy.log",
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


rule seed_overlap:
    input:
        manifests=lambda wc: [L.manifest(s) for s in PLAN.sources],
        eval_sets=lambda wc: PLAN.eval_set_inputs(PLAN.eval_sets()),
        units=lambda wc: [L.selection_units] if CFG["selection"] else [],
    output:
        report(f"{RESULTS}/validation/seed_overlap.csv", caption="../report/seed_overlap.rst", category="2. Validation"),
    params:
        args=lambda wc: args(**PLAN.seed_overlap_args()),
    resources:
        mem_mb=4000,
    log:
        f"{L.logs}/seed_overlap.log",
    shell:
        f"{script('seed_overlap')} {{params.args:q}} > {{log}} 2>&1"
