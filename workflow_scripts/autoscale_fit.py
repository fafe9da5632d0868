"""Checkpoint autoscale_fit: DDO at both small scales (real runs, and the merged proxy), the
projection to the larger scales, the weights figure, and what each DDO cost in training."""
import json
from pathlib import Path

import pandas as pd

from shardmix import autoscale, plots, scores
from shardmix.jobs import fail, job_args

args = job_args()
domains, targets = args["domains"], args["targets"]
small, large = args["scales"]
fit_rows, weight_rows, optimum = [], [], {}
for method, by_scale in args["scores"].items():
    for scale in (small, large):
        table = scores.load(by_scale[str(scale)])
        table = table[table["eval_set"].isin(targets)]
        # the model id ends in the run's name; the objective is the summed target ppl
        losses = table.groupby(table["model"].str.rsplit("/", n=1).str[-1])["ppl"].sum().to_dict()
        try:
            result = autoscale.ddo(domains, args["factors"], losses)
        except autoscale.AutoScaleError as e:
            fail(f"{method} DDO at {scale} tokens: {e}")
        optimum[method, scale] = autoscale.quantities(result["multiples"], scale)
        total = sum(optimum[method, scale].values())
        for fit in result["fits"]:
            fit_rows.append({"method": method, "scale_tokens": scale, "domain": fit["domain"], "a": fit["a"],
                             "b": fit["b"], "c": fit["c"], "rmse": fit["rmse"],
                             "points": " ".join(f"{x:.3g}:{y:.5f}" for x, y in zip(fit["x"], fit["y"])),
                             "optimal_multiple": fit["optimal_multiple"],
                             "optimal_tokens": optimum[method, scale][fit["domain"]]})
        weight_rows += [{"method": method, "scale_tokens": scale, "domain": d, "weight": q / total}
                        for d, q in optimum[method, scale].items()]
    for scale in sorted(args["predict"]):
        weights = autoscale.project(optimum[method, small], optimum[method, large], small, large, scale)
        weight_rows += [{"method": method, "scale_tokens": scale, "domain": d, "weight": w} for d, w in weights.items()]
fits, weights = pd.DataFrame(fit_rows), pd.DataFrame(weight_rows)
fits.to_csv(args["fits"], index=False, float_format="%.6g")
weights.to_csv(args["weights"], index=False, float_format="%.6g")
print(fits.to_string(index=False))
print(weights.pivot_table(index=["method", "scale_tokens"], columns="domain", values="weight").to_string())
plots.autoscale_weights(weights, (small, large), args["plot"])


def training(dirs):
    logs = [json.loads((Path(d) / "train_log.json").read_text()) for d in dirs]
    return len(logs), sum(log["tokens"] for log in logs), sum(log["seconds"] for log in logs)


cost = []
for method, dirs in (("real", args["real_models"]), ("proxy", args["proxy_units"])):
    if dirs:
        runs, tokens, seconds = training(dirs)
        cost.append({"method": method, "trained_models": runs, "training_tokens": tokens,
                     "training_seconds": round(seconds, 1),
                     "scored_models": 2 * len(autoscale.ddo_runs(domains, args["factors"]))})
cost = pd.DataFrame(cost)
cost.to_csv(args["cost"], index=False)
print(cost.to_string(index=False))
