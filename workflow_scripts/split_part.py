"""Rule split_part: tokenize one part of a big corpus source (files, or slices of one) into a
scratch stream per shard key; split_source gathers the parts in order."""
import time

from shardmix import atomic, corpus, sharding, tokenizer
from shardmix.jobs import fail, job_args

args = job_args()
source = args["source"]
start = time.perf_counter()
tok = tokenizer.load(args["tokenizer"])
pieces = [corpus.Piece(*p) for p in args["pieces"]]
try:
    with atomic.directory(args["out"]) as out:
        record = sharding.tokenize_part(corpus.read_pieces(source, pieces), tok, source["sharding"], out)
except corpus.CorpusError as e:
    fail(str(e))
documents = sum(n["documents"] for n in record["names"].values())
print(f"source {source['name']}, {len(pieces)} piece(s) from {pieces[0].file}: {documents} documents in "
      f"{len(record['names'])} stream(s) in {time.perf_counter() - start:.1f}s")
