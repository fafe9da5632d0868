"""Rule plot_scores: heatmap and ranking figures from results/scores.parquet."""
from shardmix import plots, scores
from shardmix.jobs import job_args

args = job_args()
table = scores.load(args["scores"], ["model", "kind", "shards", "eval_set", "ppl"])
plots.heatmap(table, args["heatmap"])
plots.ranking(table, args["ranking"])
print(f"wrote {args['heatmap']} and {args['ranking']}")
