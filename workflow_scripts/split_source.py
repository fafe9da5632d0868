"""Checkpoint split_source: tokenize one corpus source once (or gather the parts split_part
tokenized), cut it into shards with train / held-out / seed parts, and record which bytes were
split (checksum)."""
import time
from pathlib import Path

from shardmix import checksums, corpus, sharding, tokenizer
from shardmix.jobs import fail, job_args

args = job_args()
source = args["source"]
start = time.perf_counter()
tok = tokenizer.load(args["tokenizer"])
provenance = {"source": source["name"], "path": source["path"], "revision": source["revision"],
              "fingerprint": corpus.fingerprint(source["path"]), "checksum": corpus.checksum(source["path"])}
if args["parts"]:
    provenance["parts"] = args["pieces"]  # the job's inputs, planned the same on later runs (Planner.split_parts)
scratch = Path(args["tokens_dir"]).with_name("scratch")
try:
    if args["parts"]:
        for part in args["parts"]:
            checksums.check(part)
        manifest = sharding.split_parts(args["parts"], source["sharding"], len(tok), args["tokens_dir"],
                                        args["manifest"], provenance, scratch)
    else:
        manifest = sharding.split_source(corpus.read_documents(source, origin=source["key"]), tok,
                                         source["sharding"], args["tokens_dir"], args["manifest"], provenance,
                                         scratch)
except sharding.EmptySource:
    fail(f"{source['key']}.path: {source['path']} holds no text (no document with a non-empty "
         f"'{source.get('text_field', 'text')}' field); check the file and {source['key']}.text_field")
except corpus.CorpusError as e:
    fail(str(e))
for name, info in manifest["shards"].items():
    print(f"{name}: {info}")
print(f"source {source['name']}: seed tokens {manifest['seed_tokens']}, total {manifest['total_tokens']} tokens "
      f"in {time.perf_counter() - start:.1f}s" + (f" from {len(args['parts'])} parts" if args["parts"] else ""))
