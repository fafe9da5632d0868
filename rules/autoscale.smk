# AutoScale: DDO at two small budgets, by really training each perturbation run and by merging
# the domains' shard models (the proxy), projected to larger budgets; one larger budget is
# really trained with the projected, the uniform and the small-scale-optimal weights.
from shardmix.plan.autoscale import AutoScalePlan

AUTOSCALE = AutoScalePlan(PLAN)


rule autoscale_train:
    input:
        manifests=lambda wc: AUTOSCALE.domain_inputs(),
        seed=PLAN.seed_model,
    output:
        directory(AUTOSCALE.model("{scale}", "{run}")),
    wildcard_constraints:
        scale="[0-9]+",
        run="[^/]+",
    params:
        args=lambda wc: args(**AUTOSCALE.ddo_training(wc.scale, wc.run).args()),
        how=lambda wc, output: PLAN.run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{AUTOSCALE.logs}/train/{{scale}}/{{run}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


rule autoscale_check_train:
    input:
        manifests=lambda wc: AUTOSCALE.domain_inputs(),
        seed=PLAN.seed_model,
        weights=AUTOSCALE.weights_file,
    output:
        directory(AUTOSCALE.check_model("{weighting}")),
    wildcard_constraints:
        weighting="|".join(AUTOSCALE.check_weightings),
    params:
        args=lambda wc: args(**AUTOSCALE.check_training(wc.weighting).args()),
        how=lambda wc, output: PLAN.run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{AUTOSCALE.logs}/train/check/{{weighting}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


def autoscale_score_inputs(wildcards):
    return AUTOSCALE.score_inputs(wildcards.method, wildcards.scale)


rule autoscale_score:
    input:
        unpack(autoscale_score_inputs),
    output:
        AUTOSCALE.score_file("{method}", "{scale}"),
    wildcard_constraints:
        method="real|proxy|check",
        scale="[0-9]+",
    params:
        args=lambda wc: AUTOSCALE.score_args(wc.method, wc.scale),
        how=lambda wc, output: PLAN.run_settings("evaluation"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=2000 + CFG["runtime"]["resident_mb"],
        runtime=60,
    log:
        f"{AUTOSCALE.logs}/score/{{method}}-{{scale}}.log",
    shell:
        f"{script('evaluate_batch')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


checkpoint autoscale_fit:
    input:
        scores=lambda wc: [p for by_scale in AUTOSCALE.scores().values() for p in by_scale.values()],
        real=lambda wc: AUTOSCALE.real_models(),
        units=lambda wc: AUTOSCALE.proxy_units(),
    output:
        fits=report(f"{AUTOSCALE.folder}/fits.csv", caption="../report/autoscale_fits.rst", category="4. AutoScale"),
        weights=report(AUTOSCALE.weights_file, caption="../report/autoscale_weights.rst", category="4. AutoScale"),
        plot=report(f"{AUTOSCALE.folder}/weights.png", caption="../report/autoscale_plot.rst", category="4. AutoScale"),
        cost=report(f"{AUTOSCALE.folder}/cost.csv", caption="../report/autoscale_cost.rst", category="4. AutoScale"),
    params:
        args=lambda wc: args(**AUTOSCALE.fit_args()),
    log:
        f"{AUTOSCALE.logs}/fit.log",
    shell:
        f"{script('autoscale_fit')} {{params.args:q}} > {{log}} 2>&1"


rule autoscale_check:
    input:
        scores=AUTOSCALE.score_file("check", CFG["autoscale"]["check"]),
        weights=AUTOSCALE.weights_file,
    output:
        report(f"{AUTOSCALE.folder}/check.csv", caption="../report/autoscale_check.rst", category="4. AutoScale"),
    params:
        args=lambda wc: args(scores=AUTOSCALE.score_file("check", CFG["autoscale"]["check"]),
                             targets=CFG["autoscale"]["targets"], scale=CFG["autoscale"]["check"],
                             out=f"{AUTOSCALE.folder}/check.csv"),
    log:
        f"{AUTOSCALE.logs}/check.log",
    shell:
        f"{script('autoscale_check')} {{params.args:q}} > {{log}} 2>&1"
