"""Checkpoint split_corpus: tokenize once, cut into shards with train / held-out / seed parts."""
import time

from shardmix import sharding, tokenizer
from shardmix.corpus import CorpusError, read_documents
from shardmix.jobs import fail, job_args

args = job_args()
start = time.perf_counter()
tok = tokenizer.load(args["tokenizer"])
try:
    manifest = sharding.split_corpus(read_documents(args["corpus"]), tok, args["sharding"],
                                     args["tokens_dir"], args["manifest"])
except CorpusError as e:
    fail(str(e))
for name, info in manifest["shards"].items():
    print(f"{name}: {info}")
print(f"seed tokens {manifest['seed_tokens']}, total {manifest['total_tokens']} tokens "
      f"in {time.perf_counter() - start:.1f}s")
