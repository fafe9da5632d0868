# One table of every (model, eval set) score: Parquet always; CSV and its HTML view while small
# or asked (evaluation.scores_csv). Then the plots people read.


def score_files(wildcards):
    force_rebuilds()
    return PLAN.score_files()


rule collect_scores:
    input:
        score_files,
    output:
        csv=report(f"{RESULTS}/scores.csv", caption="../report/scores.rst", category="1. Scores"),
        html=report(f"{RESULTS}/scores.html", caption="../report/scores_html.rst", category="1. Scores"),
    params:
        # names, not paths: the path list of a large run would overflow one command-line argument
        args=lambda wc: args(scores_dir=L.scores, groups=list(PLAN.eval_groups()),
                             batches=list(PLAN.batches()), out=f"{RESULTS}/scores.csv", html=f"{RESULTS}/scores.html",
                             shard_tokens=CFG["shard_training"]["tokens"]),
    log:
        f"{L.logs}/collect_scores.log",
    benchmark:
        f"{L.benchmarks}/collect_scores.tsv"
    shell:
        f"{script('collect_scores')} {{params.args:q}} > {{log}} 2>&1"


rule scores_parquet:
    input:
        score_files,
    output:
        f"{RESULTS}/scores.parquet",
    params:
        args=lambda wc: args(scores_dir=L.scores, groups=list(PLAN.eval_groups()),
                             batches=list(PLAN.batches()), out=f"{RESULTS}/scores.parquet",
                             shard_tokens=CFG["shard_training"]["tokens"]),
    log:
        f"{L.logs}/scores_parquet.log",
    benchmark:
        f"{L.benchmarks}/scores_parquet.tsv"
    shell:
        f"{script('scores_parquet')} {{params.args:q}} > {{log}} 2>&1"


rule plot_scores:
    input:
        lambda wc: PLAN.scores_table(),
    output:
        heatmap=report(f"{RESULTS}/plots/heatmap.png", caption="../report/heatmap.rst", category="1. Scores"),
        ranking=report(f"{RESULTS}/plots/ranking.png", caption="../report/ranking.rst", category="1. Scores"),
    params:
        args=lambda wc: args(scores=PLAN.scores_table(), heatmap=f"{RESULTS}/plots/heatmap.png",
                             ranking=f"{RESULTS}/plots/ranking.png"),
    log:
        f"{L.logs}/plot_scores.log",
    benchmark:
        f"{L.benchmarks}/plot_scores.tsv"
    shell:
        f"{script('plot_scores')} {{params.args:q}} > {{log}} 2>&1"


def summary_inputs(wildcards):
    inputs = {"scores": PLAN.scores_table()}
    if PLAN.validated_mixtures():
        inputs.update(predictions=f"{RESULTS}/predictions.csv", agreement=f"{RESULTS}/validation/agreement.csv")
    if CFG["search"]["targets"]:
        inputs["best_mixtures"] = f"{L.search}/best_mixtures.csv"
        if CFG["validation"]["search"]:
            inputs["search_validation"] = f"{L.search}/validation.csv"
    return inputs


# The answers first: the report opens on this table (Snakefile: report), summary.csv holds it
rule summary:
    input:
        unpack(summary_inputs),
    output:
        csv=report(f"{RESULTS}/summary.csv", caption="../report/summary.rst", category="0. Answers"),
        html=report(f"{RESULTS}/summary.html", caption="../report/summary_html.rst", category="0. Answers"),
        landing=f"{RESULTS}/summary.rst",
        mergekit=directory(f"{RESULTS}/mergekit"),
    params:
        args=lambda wc, input, output: args(**dict(input.items()), method=PLAN.methods[0], seed=PLAN.seed_model,
                                            shard_model=L.shard_model("{shard}"), csv=output.csv, html=output.html,
                                            landing=output.landing, mergekit=output.mergekit),
    log:
        f"{L.logs}/summary.log",
    benchmark:
        f"{L.benchmarks}/summary.tsv"
    shell:
        f"{script('summary')} {{params.args:q}} > {{log}} 2>&1"
