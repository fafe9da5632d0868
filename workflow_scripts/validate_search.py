"""Rule validate_search: true ppl of each target's searched mixture, of the best really trained
subset, and of uniform weights over every shard."""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import math

import pandas as pd

from shardmix import naming, perplexity, scores
from shardmix import model as models
from shardmix import tokenizer
from shardmix.jobs import job_args, job_device

args = job_args()
device = job_device()
best = pd.read_csv(args["best"])
full = scores.load(args["scores"])
full = full[full["kind"] == "full"]
# (mixture, eval set) -> true ppl: the trained mixtures already scored, the rest scored here
true = {(m.split("/", 1)[1], s): p for m, s, p in zip(full["model"], full["eval_set"], full["ppl"])}
byte_lengths = tokenizer.token_byte_lengths(tokenizer.load(args["tokenizer"]))


def target_ppl(mixture: str, target: dict) -> float:
    """exp of the target's weighted mean true log ppl."""
    missing = [name for name in target if (mixture, name) not in true]
    if missing:
        lm = models.load_causal_lm(args["full_models"][mixture]).to(device)
        context = min(args["context"], models.context_length(lm))
        for name in missing:
            eval_set = perplexity.load_set(args["eval_sets"][name], args["max_tokens"])
            true[(mixture, name)] = perplexity.evaluate(lm, eval_set, byte_lengths, context, 16, device)["ppl"]
    return math.exp(sum(w * math.log(true[(mixture, s)]) for s, w in target.items()))


subsets = sorted({m for m, _ in true if not naming.is_weighted(m)})
rows = []
for r in best.itertuples():
    target = args["targets"][r.target]
    trained = {m: target_ppl(m, target) for m in subsets}
    best_subset = min(trained, key=trained.get) if trained else ""
    rows.append({"target": r.target, "weights": r.weights, "search_true_ppl": target_ppl(r.weights, target),
                 "best_subset": best_subset, "best_subset_true_ppl": trained.get(best_subset, math.nan),
                 "uniform_true_ppl": target_ppl(args["uniform"], target)})
out = pd.DataFrame(rows)
out.to_csv(args["out"], index=False, float_format="%.4f")
print(out.to_string(index=False))
