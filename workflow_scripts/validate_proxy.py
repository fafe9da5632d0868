"""Rule agreement: merged vs true mixture perplexity, against the naive proxy; scatter and cost plots."""
from shardmix import html_tables, scores, validation
from shardmix.jobs import job_args

args = job_args()
pairs = validation.paired(scores.load(args["scores"]))
sections = []
for proxy, out, heading in (("merged", args["agreement"], "Merged models (shardmix)"),
                            ("naive", args["naive"], "Naive proxy: mean perplexity of the member shard models")):
    table = validation.agreement(pairs, proxy)
    table.to_csv(out, index=False, float_format="%.4f")
    sections.append((heading, f"{len(pairs['shards'].unique())} really trained mixtures; row ALL is the "
                     "mean over eval sets.", table))
    print(f"{proxy}:\n{table.to_string(index=False)}")
html_tables.write(args["html"], sections)
validation.scatter_plot(pairs, args["scatter"])
curve = validation.cost_curve(args["shards"], args["mixtures"], args["tokens_per_shard"])
validation.cost_plot(curve, args["cost"])
print(curve.to_string(index=False))
