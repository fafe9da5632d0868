"""Rule evaluate_batch: score a batch of models on one eval set.

A merged model is the uniform average of its shards' models, built in place in one
evaluation model tensor by tensor, so a batch never holds more than one model.
"""
import csv
import io
import resource
import time

from shardmix import atomic, faults, merge, perplexity, tokens
from shardmix import model as models
from shardmix import tokenizer
from shardmix.jobs import fail, job_args, job_device

FIELDS = ["model", "kind", "shards", "eval_set", "tokens", "bytes", "nll", "ppl", "bpb"]

args = job_args()
device = job_device()
ids = tokens.load(args["eval_tokens"])
if args["max_tokens"]:
    ids = ids[:args["max_tokens"]]
if len(ids) < args["min_tokens"]:
    fail(f"eval set '{args['eval_set']}' has {len(ids)} tokens, fewer than evaluation.min_tokens "
         f"({args['min_tokens']}); give it more text or lower the minimum")
byte_lengths = tokenizer.token_byte_lengths(tokenizer.load(args["tokenizer"]))
lm = models.skeleton(args["models"][0]["dirs"][0]).to(device)
context = min(args["context"], models.context_length(lm))
rows, start = [], time.perf_counter()
for i, entry in enumerate(args["models"], 1):
    try:
        merge.average_into(lm, entry["dirs"])
    except merge.MergeError as e:
        fail(str(e))
    score = perplexity.evaluate(lm, ids, byte_lengths, context, args["batch_windows"], device)
    rows.append({"model": entry["model"], "kind": entry["kind"], "shards": entry["shards"],
                 "eval_set": args["eval_set"], **score})
    elapsed = time.perf_counter() - start
    print(f"[{i}/{len(args['models'])}] {entry['model']} on {args['eval_set']}: ppl {score['ppl']:.3f} "
          f"bpb {score['bpb']:.4f} ({i * score['tokens'] / elapsed:.0f} tokens/s)", flush=True)
    faults.crash_point(f"evaluate:{args['out']}")
table = io.StringIO()
writer = csv.DictWriter(table, fieldnames=FIELDS, lineterminator="\n")
writer.writeheader()
writer.writerows(rows)
atomic.write_text(args["out"], table.getvalue())
print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
