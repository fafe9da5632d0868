"""Rule train_tokenizer: byte-level BPE on an even, seeded sample of the foundation sources
(tokenizer.max_train_bytes) that reads little more than what it keeps (shardmix.sampling)."""
import resource
import time

from shardmix import atomic, tokenizer
from shardmix.corpus import CorpusError
from shardmix.jobs import fail, job_args
from shardmix.sampling import Sample

args = job_args()
start = time.perf_counter()
sample = Sample(args["sources"], args["max_train_bytes"])


def pieces():
    for text in sample.texts():
        yield from tokenizer.training_pieces(text)


try:
    with atomic.directory(args["out"]) as tmp:
        tok = tokenizer.train_bpe(pieces(), args["vocab_size"], str(tmp))
except CorpusError as e:
    fail(str(e))
print(f"trained a byte-level BPE tokenizer of {len(tok)} tokens on sources "
      f"{', '.join(s['name'] for s in args['sources'])} into {args['out']}: {sample.documents} documents, "
      f"{sample.kept_bytes / 1e6:.1f} MB kept of {sample.read_bytes / 1e6:.1f} MB read, "
      f"{time.perf_counter() - start:.1f}s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
