"""Rule plot_scores: heatmap and ranking figures from results/scores.csv."""
from shardmix import plots, scores
from shardmix.jobs import job_args

args = job_args()
table = scores.load(args["scores"])
plots.heatmap(table, args["heatmap"])
plots.ranking(table, args["ranking"])
print(f"wrote {args['heatmap']} and {args['ranking']}")
