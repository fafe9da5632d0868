# AutoScale: DDO at two small budgets, by really training each perturbation run and by merging
# the domains' shard models (the proxy), projected to larger budgets; one larger budget is
# really trained with the projected, the uniform and the small-scale-optimal weights.
from shardmix.plan.autoscale import AutoScalePlan

ASC = AutoScalePlan(PLAN)


rule autoscale_train:
    input:
        manifests=lambda wc: ASC.domain_inputs(),
        seed=PLAN.seed_model,
    output:
        directory(ASC.model("{scale}", "{run}")),
    wildcard_constraints:
        scale="[0-9]+",
        run="[^/]+",
    params:
        args=lambda wc: args(**ASC.ddo_training(wc.scale, wc.run).args()),
        how=lambda wc, output: PLAN.run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{ASC.logs}/train/{{scale}}/{{run}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


rule autoscale_check_train:
    input:
        manifests=lambda wc: ASC.domain_inputs(),
        seed=PLAN.seed_model,
        weights=ASC.weights_file,
    output:
        directory(ASC.check_model("{weighting}")),
    wildcard_constraints:
        weighting="|".join(ASC.check_weightings),
    params:
        args=lambda wc: args(**ASC.check_training(wc.weighting).args()),
        how=lambda wc, output: PLAN.run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{ASC.logs}/train/check/{{weighting}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


def autoscale_score_inputs(wildcards):
    return ASC.score_inputs(wildcards.method, wildcards.scale)


rule autoscale_score:
    input:
        unpack(autoscale_score_inputs),
    output:
        ASC.score_file("{method}", "{scale}"),
    wildcard_constraints:
        method="real|proxy|check",
        scale="[0-9]+",
    params:
        args=lambda wc: ASC.score_args(wc.method, wc.scale),
        how=lambda wc, output: PLAN.run_settings("evaluation"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=2000 + CFG["evaluation"]["resident_mb"],
        runtime=60,
    log:
        f"{ASC.logs}/score/{{method}}-{{scale}}.log",
    shell:
        f"{script('evaluate_batch')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


checkpoint autoscale_fit:
    input:
        scores=lambda wc: [p for by_scale in ASC.scores().values() for p in by_scale.values()],
        real=lambda wc: ASC.real_models(),
        units=lambda wc: ASC.proxy_units(),
    output:
        fits=report(f"{ASC.folder}/fits.csv", caption="../report/autoscale_fits.rst", category="4. AutoScale"),
        weights=report(ASC.weights_file, caption="../report/autoscale_weights.rst", category="4. AutoScale"),
        plot=report(f"{ASC.folder}/weights.png", caption="../report/autoscale_plot.rst", category="4. AutoScale"),
        cost=report(f"{ASC.folder}/cost.csv", caption="../report/autoscale_cost.rst", category="4. AutoScale"),
    params:
        args=lambda wc: args(**ASC.fit_args()),
    log:
        f"{ASC.logs}/fit.log",
    shell:
        f"{script('autoscale_fit')} {{params.args:q}} > {{log}} 2>&1"


rule autoscale_check:
    input:
        scores=ASC.score_file("check", CFG["autoscale"]["check"]),
        weights=ASC.weights_file,
    output:
        report(f"{ASC.folder}/check.csv", caption="../report/autoscale_check.rst", category="4. AutoScale"),
    params:
        args=lambda wc: args(scores=ASC.score_file("check", CFG["autoscale"]["check"]),
                             targets=CFG["autoscale"]["targets"], scale=CFG["autoscale"]["check"],
                             out=f"{ASC.folder}/check.csv"),
    log:
        f"{ASC.logs}/check.log",
    shell:
        f"{script('autoscale_check')} {{params.args:q}} > {{log}} 2>&1"
