"""Rule evaluate_batch: score a batch of models on every eval set of one group.

Each model is built once (a merged model tensor by tensor into one evaluation model, so a
batch never holds more than one model) and then scored on each set of the group.
"""
import csv
import io
import resource
import time

from shardmix import atomic, faults, merge, perplexity, tokens
from shardmix import model as models
from shardmix import tokenizer
from shardmix.jobs import fail, job_args, job_device
from shardmix.scores import COLUMNS

args = job_args()
device = job_device()
sets = {}
for name, path in args["eval_sets"].items():
    ids = tokens.load(path)
    if args["max_tokens"]:
        ids = ids[:args["max_tokens"]]
    if len(ids) < args["min_tokens"]:
        fail(f"eval set '{name}' has {len(ids)} tokens, fewer than evaluation.min_tokens "
             f"({args['min_tokens']}); give it more text or lower the minimum")
    sets[name] = ids
byte_lengths = tokenizer.token_byte_lengths(tokenizer.load(args["tokenizer"]))
lm = models.skeleton(args["models"][0]["dirs"][0]).to(device)
context = min(args["context"], models.context_length(lm))
rows, start, scored_tokens = [], time.perf_counter(), 0
for i, entry in enumerate(args["models"], 1):
    plan = entry.get("merge") or {}
    try:
        merge.merge_into(lm, entry["dirs"], plan.get("weights"), plan.get("method"), plan.get("seed"))
    except merge.MergeError as e:
        fail(str(e))
    for name, ids in sets.items():
        score = perplexity.evaluate(lm, ids, byte_lengths, context, args["batch_windows"], device)
        scored_tokens += score["tokens"]
        rows.append({**{k: entry[k] for k in ("model", "kind", "shards", "weights", "method")},
                     "eval_set": name, **score})
    elapsed = time.perf_counter() - start
    print(f"[{i}/{len(args['models'])}] {entry['model']}: " + ", ".join(
        f"{r['eval_set']} {r['ppl']:.3f}" for r in rows[-len(sets):]) + f" ({scored_tokens / elapsed:.0f} tokens/s)",
        flush=True)
    faults.crash_point(f"evaluate:{args['out']}")
table = io.StringIO()
writer = csv.DictWriter(table, fieldnames=COLUMNS, lineterminator="\n")
writer.writeheader()
writer.writerows(rows)
atomic.write_text(args["out"], table.getvalue())
print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
