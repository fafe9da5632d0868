"""Rule selection_pool: the candidate pool as units of equal length (results/selection/pool/)."""
import time

import numpy as np

from shardmix import candidates, corpus, tokenizer
from shardmix.jobs import fail, job_args, write_json

args = job_args()
start = time.perf_counter()
tok = tokenizer.load(args["tokenizer"])
try:
    built = candidates.build_units(candidates.read_pool(args["pool"]), tok, args["unit_tokens"])
except corpus.CorpusError as e:
    fail(str(e))
np.savez(args["units"], units=built["units"], first_doc=built["first_doc"], last_doc=built["last_doc"])
write_json(args["info"], {"documents": len(built["doc_ids"]), "units": len(built["units"]),
                          "unit_tokens": args["unit_tokens"], "pool_tokens": built["pool_tokens"],
                          "checksum": corpus.checksum(args["pool"]["path"]),
                          "fingerprint": corpus.fingerprint(args["pool"]["path"]),
                          "seconds": round(time.perf_counter() - start, 2), "doc_ids": built["doc_ids"]})
print(f"pool {args['pool']['path']}: {len(built['doc_ids'])} documents, {built['pool_tokens']} tokens -> "
      f"{len(built['units'])} units of {args['unit_tokens']} tokens")
