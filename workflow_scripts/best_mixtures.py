"""Checkpoint best_mixtures: every target's searched mixture next to the best scored subset."""
import json

import pandas as pd

from shardmix import calibration as shardmix_calibration
from shardmix import scores, search
from shardmix.jobs import job_args

args = job_args()
table = scores.load(args["scores"])
calibration = pd.read_csv(args["calibration"]) if args["calibration"] else None
rows = []
for name, target in args["targets"].items():
    with open(args["found"][name]) as f:
        found = json.load(f)
    calibrated = {} if calibration is None else shardmix_calibration.coefficients(calibration, target)
    subsets = search.subset_objectives(table, args["method"], search.Objective(target, calibrated))
    best = min(subsets, key=lambda m: subsets[m][0])
    rows.append({"target": name, "weights": found["mixture"], "search": found["search"],
                 "predicted_ppl": found["predicted_ppl"], "merged_ppl": found["merged_ppl"],
                 "best_subset": best, "best_subset_predicted_ppl": subsets[best][0],
                 "best_subset_merged_ppl": subsets[best][1],
                 "ranked_by": "merged" if not calibrated else ("calibrated" if len(calibrated) == len(target)
                                                                else "calibrated on " + "+".join(sorted(calibrated)))})
best = pd.DataFrame(rows)
best.to_csv(args["out"], index=False, float_format="%.4f")
search.weights_plot(best, args["shards"], args["plot"])
print(best.to_string(index=False))
