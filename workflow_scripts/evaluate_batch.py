"""Rule evaluate_batch: score a batch of models on every eval set of one group.

Each model is built once and scored on each set of the group. Where the batch's shard models
fit runtime.resident_mb (on CUDA also the free GPU memory) they are loaded once and each
mixture is built from memory by updating a running sum (shardmix.merging.resident), in an order where
consecutive mixtures differ little; otherwise each merge streams tensor by tensor from disk
into one evaluation model, so a batch never holds more than one model.
"""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import csv
import io
import resource
import time

import torch

from shardmix import atomic, faults, merging, perplexity, progress
from shardmix import model as models
from shardmix import tokenizer
from shardmix.jobs import fail, job_args, job_device
from shardmix.scores import COLUMNS

args = job_args()
device = job_device()
sets = {}
for name, spec in args["eval_sets"].items():
    sets[name] = perplexity.load_set(spec, args["max_tokens"])
    if len(sets[name].ids) < args["min_tokens"]:
        fail(f"eval set '{name}' has {len(sets[name].ids)} tokens, fewer than evaluation.min_tokens "
             f"({args['min_tokens']}); give it more text or lower the minimum")
byte_lengths = tokenizer.token_byte_lengths(tokenizer.load(args["tokenizer"]))
entries = args["models"]
lm = models.skeleton(entries[0]["dirs"][0]).to(device)
context = min(args["context"], models.context_length(lm))


def merge_plan(entry):
    """(dirs, weights, method, seed dir) of a shard or merged model; None for a saved model scored as is."""
    if entry["kind"] == "shard":
        return entry["dirs"], [1.0], merging.method("linear"), None
    if entry["kind"] == "merged":
        plan = entry["merge"]
        return entry["dirs"], plan["weights"], merging.method(plan["method"]), plan["seed"]
    return None


plans = [merge_plan(e) for e in entries]
pooled = sorted({d for p in plans if p for d in p[0] + ([p[3]] if p[2].needs_seed else [])})
pool = None
if pooled:
    try:
        need, budget = merging.resident_bytes(pooled, lm), args["resident_mb"] * 2**20
        if device.type == "cuda":
            budget = min(budget, int(0.9 * torch.cuda.mem_get_info(device)[0]))
        if need <= budget:
            pool = merging.ResidentPool(lm, pooled, device)
        print(f"{len(pooled)} shard models, {need / 2**20:.0f} MiB resident: "
              + ("held in memory" if pool else f"over the {budget / 2**20:.0f} MiB budget, merges stream from disk"),
              flush=True)
    except merging.MergeError as e:
        fail(str(e))
# saved models first, then the mixtures in an order where consecutive ones differ little
saved = [i for i, p in enumerate(plans) if p is None]
mixed = [i for i, p in enumerate(plans) if p is not None]
if pool:
    mixed = [mixed[j] for j in merging.update_order(
        [merging.coefficients(dict(zip(plans[i][0], plans[i][1])))[0] for i in mixed])]
rows, start, scored_tokens = {}, time.perf_counter(), 0
for n, i in enumerate(saved + mixed, 1):
    entry, plan = entries[i], plans[i]
    try:
        if plan is None:
            merging.merge_into(lm, entry["dirs"])
        elif pool:
            pool.build(*plan)
        else:
            merging.merge_into(lm, *plan)
    except merging.MergeError as e:
        fail(str(e))
    rows[i] = []
    for name, eval_set in sets.items():
        score = perplexity.evaluate(lm, eval_set, byte_lengths, context, args["batch_windows"], device)
        scored_tokens += score["tokens"]
        rows[i].append({**{k: entry[k] for k in ("model", "kind", "shards", "weights", "method")},
                        "eval_set": name, **score})
    elapsed = time.perf_counter() - start
    print(f"[{n}/{len(entries)}] {entry['model']}: " + ", ".join(f"{r['eval_set']} {r['ppl']:.3f}" for r in rows[i])
          + f" ({scored_tokens / elapsed:.0f} tokens/s, {progress.eta(n, len(entries), elapsed)})", flush=True)
    faults.crash_point(f"evaluate:{args['out']}")
if pool:
    print(f"running sum: {pool.updates} member updates for {len(mixed)} mixtures "
          f"({sum(len(plans[i][0]) for i in mixed)} members in all)")
table = io.StringIO()
writer = csv.DictWriter(table, fieldnames=COLUMNS, lineterminator="\n")
writer.writeheader()
writer.writerows(r for i in range(len(entries)) for r in rows[i])
atomic.write_text(args["out"], table.getvalue())
print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
