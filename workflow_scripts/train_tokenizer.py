"""Rule train_tokenizer: byte-level BPE on an even sample of the foundation sources
(tokenizer.max_train_bytes)."""
import zlib
from pathlib import Path

from shardmix import atomic, tokenizer
from shardmix.corpus import CorpusError, read_documents, source_files
from shardmix.jobs import fail, job_args

args = job_args()


def size_on_disk(path: Path) -> int:
    compressed = 4 if path.name.endswith(".gz") else 1  # text compresses about 4x
    return compressed * sum(p.stat().st_size for p in source_files(path))


def texts(limit):
    """Every document when the sources fit the limit; else a seeded share spread over all of
    them, so a corpus sorted by domain does not give a tokenizer of its first domains."""
    total = sum(size_on_disk(Path(s["path"])) for s in args["sources"])
    rate = min(1.0, limit / max(1, total))
    used, i = 0, -1
    for source in args["sources"]:
        for doc in read_documents(source, origin=source["key"]):
            i += 1
            if used >= limit:
                return
            if rate < 1.0 and zlib.crc32(str(i).encode()) / 2**32 >= rate:
                continue
            used += len(doc.text.encode("utf-8"))
            yield from tokenizer.training_pieces(doc.text)


try:
    with atomic.directory(args["out"]) as tmp:
        tok = tokenizer.train_bpe(texts(args["max_train_bytes"]), args["vocab_size"], str(tmp))
except CorpusError as e:
    fail(str(e))
print(f"trained a byte-level BPE tokenizer of {len(tok)} tokens on sources "
      f"{', '.join(s['name'] for s in args['sources'])} into {args['out']}")
