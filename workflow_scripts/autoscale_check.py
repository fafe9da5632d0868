"""Rule autoscale_check: the really trained check at the larger scale, one row per weighting
(projected, uniform, small-scale optimum) with its true ppl on each target and their sum."""
import pandas as pd

from shardmix import naming, scores
from shardmix.jobs import job_args

args = job_args()
table = scores.load(args["scores"])
table = table[table["eval_set"].isin(args["targets"])]
rows = []
for model, group in table.groupby("model", sort=False):
    ppl = group.set_index("eval_set")["ppl"]
    weights = dict(zip(group["shards"].iloc[0].split(naming.SEP), group["weights"].iloc[0].split(naming.SEP)))
    rows.append({"weighting": model.rsplit("/", 1)[-1], "scale_tokens": args["scale"],
                 "weights": " ".join(f"{d}:{float(w):.3f}" for d, w in weights.items()),
                 **{t: ppl[t] for t in args["targets"]}, "sum_ppl": ppl[args["targets"]].sum()})
check = pd.DataFrame(rows)
check.to_csv(args["out"], index=False, float_format="%.6g")
print(check.to_string(index=False))
