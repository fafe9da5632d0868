"""Rule scores_parquet: results/scores.parquet from every batch's scores, a batch at a time, so
its memory grows with one batch, whatever the table's size."""
from shardmix import scores
from shardmix.jobs import job_args

args = job_args()
size = scores.write_parquet(args["scores_dir"], args["groups"], args["batches"], args["out"], args["shard_tokens"])
print(f"{size['rows']} rows: {size['models']} models x {size['eval_sets']} eval sets")
