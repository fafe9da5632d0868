"""Rule validate_search: true ppl of each target's searched mixture against uniform weights over
every shard on the same budget, the best really trained subset of that budget, and the seed."""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import math

import pandas as pd

from shardmix import atomic, perplexity, scores
from shardmix import model as models
from shardmix import tokenizer
from shardmix.jobs import job_args, job_device

args = job_args()
device = job_device()
best = pd.read_csv(args["best"], keep_default_na=False)
table = scores.load(args["scores"])
# (model id, eval set) -> true ppl: the models already scored, the rest scored here
true = {(m, s): p for m, s, p in zip(table["model"], table["eval_set"], table["ppl"])}
byte_lengths = tokenizer.token_byte_lengths(tokenizer.load(args["tokenizer"]))


def target_ppl(model: str, target: dict) -> float:
    """exp of the target's weighted mean true log ppl."""
    missing = [name for name in target if (model, name) not in true]
    if missing:
        lm = models.load_causal_lm(args["models"][model]).to(device)
        context = min(args["context"], models.context_length(lm))
        for name in missing:
            eval_set = perplexity.load_set(args["eval_sets"][name], args["max_tokens"])
            true[(model, name)] = perplexity.evaluate(lm, eval_set, byte_lengths, context, 16, device)["ppl"]
    return math.exp(sum(w * math.log(true[(model, s)]) for s, w in target.items()))


rows = []
for r in best.itertuples():
    target = args["targets"][r.target]
    trained = {m: target_ppl(model, target) for m, model in args["subsets"].items()}
    best_subset = min(trained, key=trained.get) if trained else ""
    row = {"target": r.target, "weights": r.weights, "budget_tokens": args["budget_tokens"],
           "search_true_ppl": target_ppl(args["picks"][r.weights], target),
           "uniform_true_ppl": target_ppl(args["uniform"], target),
           "best_subset": best_subset, "best_subset_true_ppl": trained.get(best_subset, math.nan),
           "seed_ppl": target_ppl("seed", target), "flag": r.flag}
    for other in ("uniform", "best_subset", "seed"):  # < 0: the search's pick is really better
        row[f"vs_{other}"] = row["search_true_ppl"] / row[f"{other}_true_ppl" if other != "seed" else "seed_ppl"] - 1
    rows.append(row)
out = pd.DataFrame(rows)
with atomic.file(args["out"]) as tmp:
    out.to_csv(tmp, index=False, float_format="%.4f")
print(out.to_string(index=False))
