"""Checkpoint best_mixtures: every target's searched mixture next to the best scored subset and
the seed, with the repetition it implies and a flag where its own prediction does not beat them."""
import json
import math

import pandas as pd

from shardmix import atomic, calibration as shardmix_calibration
from shardmix import scores, search
from shardmix.jobs import job_args

args = job_args()
table = scores.load(args["scores"])
seed = table[table["kind"] == "seed"].set_index("eval_set")["ppl"]
calibration = pd.read_csv(args["calibration"]) if args["calibration"] else None
rows = []
for name, target in args["targets"].items():
    with open(args["found"][name]) as f:
        found = json.load(f)
    calibrated = {} if calibration is None else shardmix_calibration.coefficients(calibration, target)
    subsets = search.subset_objectives(table, args["method"], search.Objective(target, calibrated), args["shards"])
    best = min(subsets, key=lambda m: subsets[m][0])
    seed_ppl = math.exp(sum(w * math.log(seed[s]) for s, w in target.items()))
    epochs = search.repetition(found["mixture"], args["shards"], args["train_tokens"], args["budget_tokens"])
    flags = []
    if found["predicted_ppl"] >= seed_ppl:
        flags.append(f"predicted {found['predicted_ppl']:.1f}, no better than the seed ({seed_ppl:.1f})")
    if found["predicted_ppl"] >= subsets[best][0]:
        flags.append(f"predicted no better than the best scored subset {best} ({subsets[best][0]:.1f})")
    for flag in flags:
        print(f"WARNING: target {name}: the searched mixture is {flag}; it is trained anyway, to be checked")
    rows.append({"target": name, "weights": found["mixture"], "search": found["search"],
                 "predicted_ppl": found["predicted_ppl"], "merged_ppl": found["merged_ppl"],
                 "budget_tokens": args["budget_tokens"], "max_epochs": max(epochs.values()),
                 "epochs": " ".join(f"{s}:{e:.2f}" for s, e in epochs.items()), "seed_ppl": seed_ppl,
                 "best_subset": best, "best_subset_predicted_ppl": subsets[best][0],
                 "best_subset_merged_ppl": subsets[best][1], "flag": "; ".join(flags),
                 "ranked_by": "merged" if not calibrated else ("calibrated" if len(calibrated) == len(target)
                                                                else "calibrated on " + "+".join(sorted(calibrated)))})
best = pd.DataFrame(rows)
with atomic.file(args["out"]) as tmp:
    best.to_csv(tmp, index=False, float_format="%.4f")
search.weights_plot(best, args["shards"], args["plot"])
print(best.to_string(index=False))
