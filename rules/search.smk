# Mixture search: per target, the weights over every shard that minimise the predicted ppl;
# with validation.search, the searched mixtures are really trained and checked.


def search_inputs(wildcards):
    return PLAN.search_inputs(wildcards.target)


rule search_target:
    input:
        unpack(search_inputs),
    output:
        f"{L.search}/targets/{{target}}.json",
    wildcard_constraints:
        target="[^/]+",
    params:
        args=lambda wc: args(**PLAN.search_args(wc.target)),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{L.logs}/search/{{target}}.log",
    shell:
        f"{script('search_target')} {{params.args:q}} {{threads}} > {{log}} 2>&1"


checkpoint best_mixtures:
    input:
        found=lambda wc: [f"{L.search}/targets/{t}.json" for t in PLAN.search_targets()],
        scores=lambda wc: PLAN.scores_table(),
        calibration=lambda wc: PLAN.calibration_input() or [],
    output:
        csv=report(f"{L.search}/best_mixtures.csv", caption="../report/best_mixtures.rst", category="3. Search"),
        plot=report(f"{L.search}/weights.png", caption="../report/search_weights.rst", category="3. Search"),
    params:
        args=lambda wc: args(**PLAN.best_mixtures_args()),
    log:
        f"{L.logs}/best_mixtures.log",
    shell:
        f"{script('best_mixtures')} {{params.args:q}} > {{log}} 2>&1"


rule validate_search:
    input:
        best=f"{L.search}/best_mixtures.csv",
        scores=lambda wc: PLAN.scores_table(),
        models=lambda wc: sorted(PLAN.search_validation_models().values()),
        tokenizer=PLAN.tokenizer,
    output:
        report(f"{L.search}/validation.csv", caption="../report/search_validation.rst", category="3. Search"),
    params:
        args=lambda wc: args(**PLAN.validate_search_args()),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=60,
    log:
        f"{L.logs}/validate_search.log",
    shell:
        f"{script('validate_search')} {{params.args:q}} {{threads}} > {{log}} 2>&1"
