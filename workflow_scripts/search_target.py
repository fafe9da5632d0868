"""Rule search_target: the weights over every shard that minimise one target's predicted ppl."""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import json
import math
import time

import numpy as np
import pandas as pd

from shardmix import calibration as shardmix_calibration
from shardmix import merging, naming, perplexity, search
from shardmix import model as models
from shardmix.jobs import fail, job_args, job_device, write_json

args = job_args()
device = job_device()
calibration = shardmix_calibration.coefficients(pd.read_csv(args["calibration"]), args["target"]) \
    if args["calibration"] else {}
objective = search.Objective(args["target"], calibration)
lm = models.skeleton(args["shard_dirs"][0]).to(device)
context = min(args["context"], models.context_length(lm))
ids = {name: perplexity.load_set(args["eval_sets"][name], args["max_tokens"]) for name in args["target"]}
sets = {name: search.windows(x, context) for name, x in ids.items()}
settings, method = args["search"], args["method"]
try:
    limit = search.caps(args["train_tokens"], args["budget_tokens"], settings["max_epochs"])
except search.SearchError as e:
    fail(str(e))
start = time.perf_counter()
resident = search.stacked_bytes(args["shard_dirs"]) <= settings["max_resident_mb"] * 2**20
print(f"target {args['name']}: {json.dumps(args['target'])}; calibrated on {sorted(calibration) or 'no set'}; "
      f"{'gradient search, shard models resident' if resident else 'sampling search, streamed merges'}", flush=True)
if resident:
    stacked = search.StackedShards(args["shard_dirs"], method, args["seed_dir"], device)
    weights = search.gradient_search(lm, stacked, sets, objective, settings["steps"], settings["lr"],
                                     settings["windows_per_step"], settings["seed"], device, limit)
    del stacked
else:
    weights = search.sampling_search(lm, args["shard_dirs"], args["shards"], method, args["seed_dir"], ids, context,
                                     objective, settings["samples"], settings["seed"], device, limit)
mixture = search.pick(weights, args["shards"], settings["min_weight"], limit)
final = naming.weights(mixture)
# the pick as it will be trained: small weights dropped, the rest in thousandths
merging.merge_into(lm, [args["shard_dirs"][args["shards"].index(s)] for s in final], list(final.values()), method,
                 args["seed_dir"])
nll = search.exact_nll(lm, ids, args["target"], context, device)
n_eff = naming.n_eff(mixture)
result = {"target": args["name"], "mixture": mixture, "search": "gradient" if resident else "sampling",
          "raw_weights": dict(zip(args["shards"], np.round(weights, 4).tolist())),
          "predicted_ppl": math.exp(objective.predicted_log(nll, n_eff)), "merged_ppl": math.exp(objective.merged_log(nll)),
          "merged_ppl_per_set": {k: math.exp(v) for k, v in nll.items()}, "budget_tokens": args["budget_tokens"],
          "epochs": search.repetition(mixture, args["shards"], args["train_tokens"], args["budget_tokens"]),
          "seconds": round(time.perf_counter() - start, 1)}
write_json(args["out"], result)
print(json.dumps(result, indent=2))
