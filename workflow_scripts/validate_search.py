"""Rule validate_search: true ppl of each target's searched mixture, of the best really trained
subset, and of uniform weights over every shard."""
import math

import pandas as pd

from shardmix import naming, perplexity, scores, tokens
from shardmix import model as models
from shardmix import tokenizer
from shardmix.jobs import job_args, job_device

args = job_args()
device = job_device()
best = pd.read_csv(args["best"])
table = scores.load(args["scores"])
byte_lengths = tokenizer.token_byte_lengths(tokenizer.load(args["tokenizer"]))
cache = {}


def true_ppl(mixture: str, target: dict) -> float:
    """exp of the target's weighted mean true log ppl, scoring the really trained model."""
    missing = [name for name in target if (mixture, name) not in cache]
    if missing:
        lm = models.load_causal_lm(args["full_models"][mixture]).to(device)
        context = min(args["context"], models.context_length(lm))
        for name in missing:
            ids = tokens.load(args["eval_sets"][name])[:args["max_tokens"] or None]
            cache[(mixture, name)] = perplexity.evaluate(lm, ids, byte_lengths, context, 16, device)["ppl"]
    return math.exp(sum(w * math.log(cache[(mixture, s)]) for s, w in target.items()))


full = table[(table["kind"] == "full") & ~table["model"].str.contains(naming.AT, regex=False)]
rows = []
for r in best.itertuples():
    target = args["targets"][r.target]
    trained = {}
    for model_id, g in full.groupby("model"):
        ppl = g.set_index("eval_set")["ppl"]
        trained[model_id.split("/", 1)[1]] = math.exp(sum(w * math.log(ppl[s]) for s, w in target.items()))
    best_subset = min(trained, key=trained.get) if trained else ""
    rows.append({"target": r.target, "weights": r.weights, "search_true_ppl": true_ppl(r.weights, target),
                 "best_subset": best_subset, "best_subset_true_ppl": trained.get(best_subset, math.nan),
                 "uniform_true_ppl": true_ppl(args["uniform"], target)})
out = pd.DataFrame(rows)
out.to_csv(args["out"], index=False, float_format="%.4f")
print(out.to_string(index=False))
