"""Rule select_shard: one method's choice of candidates toward one target, as a new shard's
training tokens, with its provenance (pool, target, method, OT settings, chosen documents)."""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import json
import time

import numpy as np

from shardmix import atomic, embedding, overlap, selection, tokenizer, tokens
from shardmix.candidates import pieces
from shardmix.jobs import fail, job_args, job_device

args = job_args()
device = job_device()
pool = np.load(args["units"])
units = pool["units"]
info = json.load(open(args["pool_info"]))
vectors = np.load(args["embeddings"])
tok = tokenizer.load(args["tokenizer"])

start = time.perf_counter()
protected = overlap.protected_hashes([tokens.load(p) for p in args["protected"]], args["overlap_ngram"])
excluded = overlap.overlapping(units, protected, args["overlap_ngram"])
eligible = ~excluded
overlap_seconds = time.perf_counter() - start
count = -(-args["tokens"] // args["unit_tokens"])
print(f"{len(units)} candidate units; {int(excluded.sum())} share a {args['overlap_ngram']}-token span with a "
      f"held-out part or an eval set and are excluded ({overlap_seconds:.1f} s); {count} to choose")
if eligible.sum() < count:
    fail(f"selection.tokens: {args['tokens']} tokens ({count} units) is more than the pool offers: "
         f"{int(eligible.sum())} eligible units of {args['unit_tokens']} tokens ({int(excluded.sum())} of "
         f"{len(units)} excluded for overlapping held-out or eval text)")

start = time.perf_counter()
embed = embedding.Embedder(args["seed"], tok, args["encoder"], device, args["batch_size"])
target = embed(pieces(tokens.load(args["target_tokens"]), args["unit_tokens"]))
target_seconds = time.perf_counter() - start

start = time.perf_counter()
chosen, how = selection.select(args["method"], vectors, target, eligible, count, args["ot"], args["seed_value"],
                               args["target"], device, log=lambda m: print(m, flush=True))
select_seconds = time.perf_counter() - start
scale = how["cost_scale"]
distance = selection.ot_distance(vectors[chosen], target, args["ot"], args["seed_value"], scale, device)
pool_distance = selection.ot_distance(vectors[eligible], target, args["ot"], args["seed_value"], scale, device)

order = np.sort(chosen)  # training shuffles its windows; pool order keeps documents readable
doc_ids = info["doc_ids"]
documents = [doc_ids[d] for d in dict.fromkeys(
    int(d) for i in order for d in range(int(pool["first_doc"][i]), int(pool["last_doc"][i]) + 1))]
provenance = {
    "shard": args["shard"], "method": args["method"], "target": args["target"], "pool": args["pool"],
    "pool_checksum": info["checksum"], "unit_tokens": args["unit_tokens"], "tokens": int(len(order) * units.shape[1]),
    "candidates": len(units), "excluded_overlap": int(excluded.sum()), "overlap_ngram": args["overlap_ngram"],
    "ot": args["ot"], "ot_run": how, "seed": args["seed_value"], "embedder": embed.source,
    "embed_seconds": round(json.load(open(args["embed_info"]))["seconds"] + target_seconds, 2),
    "ot_seconds": round(select_seconds, 2) if args["method"] == "gotd" else 0.0,
    "select_seconds": round(select_seconds, 2), "ot_distance": distance, "pool_ot_distance": pool_distance,
    "units": [int(i) for i in order], "documents": documents,
}
with atomic.directory(args["out"]) as out:
    tokens.save(out / "train.npy", units[order].reshape(-1), len(tok))
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
print(f"{args['shard']}: {len(order)} units ({provenance['tokens']} tokens) from {len(documents)} documents; "
      f"OT distance to {args['target']} {distance:.4f} (whole eligible pool {pool_distance:.4f}); "
      f"{args['method']} took {select_seconds:.1f} s")
