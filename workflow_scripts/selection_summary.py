"""Rule selection_summary: results/selection/summary.csv and one figure per target."""
import json

import pandas as pd

from shardmix import naming, plots, scores
from shardmix.jobs import job_args

args = job_args()
table = scores.load(args["scores"])
models = table[(table["kind"] == "shard") | ((table["kind"] == "merged") & (table["method"] == args["method"]))]
rows = []
for shard, spec in args["selections"].items():
    provenance = json.load(open(f"{args['shards_dir']}/{shard}/provenance.json"))
    on_target = models[models["eval_set"] == spec["target"]]
    holding = on_target[on_target["shards"].map(lambda s: shard in s.split(naming.SEP))]
    best = holding.loc[holding["ppl"].idxmin()]
    seed = table[(table["kind"] == "seed") & (table["eval_set"] == spec["target"])]["ppl"].iloc[0]
    alone = holding[holding["kind"] == "shard"]["ppl"].iloc[0]
    rows.append({"target": spec["target"], "method": spec["method"], "shard": shard, "seed_ppl": seed,
                 "shard_ppl": alone, "best_mixture": best["model"], "best_mixture_ppl": best["ppl"],
                 "ot_distance": provenance["ot_distance"], "embed_seconds": provenance["embed_seconds"],
                 "ot_seconds": provenance["ot_seconds"]})
summary = pd.DataFrame(rows).sort_values("target", kind="stable")
summary.to_csv(args["out"], index=False, float_format="%.6g")
print(summary.to_string(index=False))
new = set(args["selections"])
for target, out in args["plots"].items():
    on_target = models[models["eval_set"] == target]
    without = on_target[on_target["shards"].map(lambda s: not new & set(s.split(naming.SEP)))]
    seed = table[(table["kind"] == "seed") & (table["eval_set"] == target)]["ppl"].iloc[0]
    reference = {"seed": seed}
    shards_only = without[without["kind"] == "shard"]
    if len(shards_only):
        reference["best shard of the run"] = shards_only["ppl"].min()
    if len(without):
        reference["best model without new data"] = without["ppl"].min()
    plots.selection(summary, reference, target, out)
    print(f"wrote {out}")
