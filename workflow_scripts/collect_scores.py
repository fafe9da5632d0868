"""Rule collect_scores: results/scores.csv from every batch's scores."""
from shardmix import scores
from shardmix.jobs import job_args

args = job_args()
table = scores.collect(args["scores_dir"], args["eval_sets"], args["batches"])
table.to_csv(args["out"], index=False)
print(f"{len(table)} rows: {table['model'].nunique()} models x {table['eval_set'].nunique()} eval sets")
