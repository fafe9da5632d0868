"""Rule collect_scores: results/scores.csv from every batch's scores."""
from shardmix import atomic, html_tables, scores
from shardmix.jobs import job_args

args = job_args()
table = scores.collect(args["scores_dir"], args["groups"], args["batches"], args["shard_tokens"])
atomic.write_text(args["out"], table.to_csv(index=False))
wide, note = scores.ppl_by_model(table)
html_tables.write(args["html"], [("Perplexity of every model on every eval set", note, wide)])
print(f"{len(table)} rows: {table['model'].nunique()} models x {table['eval_set'].nunique()} eval sets")
