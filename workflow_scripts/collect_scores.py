"""Rule collect_scores: results/scores.csv from every batch's scores."""
from shardmix import atomic, html_tables, naming, scores
from shardmix.jobs import job_args

args = job_args()
table = scores.collect(args["scores_dir"], args["groups"], args["batches"], args["shard_tokens"])
atomic.write_text(args["out"], table.to_csv(index=False))


def label(model: str) -> str:
    kind, _, mixture = model.partition("/")
    return f"{kind}/{naming.short(mixture, 48)}" if mixture else model


sections = []
for heading, wide, note in scores.ppl_by_model(table):
    sets = [c for c in wide.columns if c not in ("model", "kind")]
    sections.append((heading, note, html_tables.marked(wide, "model", label, sets)))
html_tables.write(args["html"], sections)
print(f"{len(table)} rows: {table['model'].nunique()} models x {table['eval_set'].nunique()} eval sets")
