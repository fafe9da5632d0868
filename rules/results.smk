# One table of every (model, eval set) score, and the plots people read.


def score_files(wildcards):
    force_rebuilds()
    return PLAN.score_files()


rule collect_scores:
    input:
        score_files,
    output:
        csv=report(f"{R}/scores.csv", caption="../report/scores.rst", category="1. Scores"),
        html=report(f"{R}/scores.html", caption="../report/scores_html.rst", category="1. Scores"),
    params:
        # names, not paths: the path list of a large run would overflow one command-line argument
        args=lambda wc: args(scores_dir=L.scores, groups=list(PLAN.eval_groups()),
                             batches=list(PLAN.batches()), out=f"{R}/scores.csv", html=f"{R}/scores.html"),
    log:
        f"{L.logs}/collect_scores.log",
    shell:
        f"{script('collect_scores')} {{params.args:q}} > {{log}} 2>&1"


rule plot_scores:
    input:
        f"{R}/scores.csv",
    output:
        heatmap=report(f"{R}/plots/heatmap.png", caption="../report/heatmap.rst", category="1. Scores"),
        ranking=report(f"{R}/plots/ranking.png", caption="../report/ranking.rst", category="1. Scores"),
    params:
        args=args(scores=f"{R}/scores.csv", heatmap=f"{R}/plots/heatmap.png", ranking=f"{R}/plots/ranking.png"),
    log:
        f"{L.logs}/plot_scores.log",
    shell:
        f"{script('plot_scores')} {{params.args:q}} > {{log}} 2>&1"
