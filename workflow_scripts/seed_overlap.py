"""Rule seed_overlap: which eval sets and selection candidates repeat text the seed model was
pretrained on (n-token spans), so a score on them is read knowing the seed has seen some of it."""
import json

import numpy as np
import pandas as pd

from shardmix import atomic, perplexity, seed_data
from shardmix.jobs import job_args

args = job_args()
files = []
for path, manifest, domains in args["seed_files"]:
    with open(manifest) as f:
        files.append((path, json.load(f), domains))
targets = {name: np.asarray(perplexity.load_set(spec, args["max_tokens"]).ids) for name, spec in args["eval_sets"].items()}
kinds = dict.fromkeys(targets, "eval set")
units = None
if args["units"]:
    units = np.load(args["units"])["units"]
    rng = np.random.default_rng(0)
    if len(units) > args["sample_units"]:  # an estimate from a sample: the hashes of a whole pool could fill memory
        units = units[np.sort(rng.choice(len(units), args["sample_units"], replace=False))]
    for i, unit in enumerate(units):
        targets[f"candidate {i}"] = unit
n = args["ngram"]
share = seed_data.seen_share(targets, seed_data.blocks(files), n)
rows = [{"name": name, "kind": kinds[name], "tokens": len(targets[name]), "seen_span_share": share[name]}
        for name in kinds]
if units is not None:
    seen = np.array([share[f"candidate {i}"] for i in range(len(units))])
    rows.append({"name": "selection pool", "kind": f"candidates ({len(units)} units)",
                 "tokens": int(units.size), "seen_span_share": float(seen.mean()),
                 "units_with_a_seen_span": float((seen > 0).mean())})
table = pd.DataFrame(rows)
with atomic.file(args["out"]) as tmp:
    table.to_csv(tmp, index=False, float_format="%.4f")
print(f"{n}-token spans seen in the seed's data:\n{table.to_string(index=False)}")
for r in table.itertuples():
    if r.seen_span_share > 0.01:
        print(f"WARNING: {r.name}: {r.seen_span_share:.1%} of its {n}-token spans occur in the seed's data")
