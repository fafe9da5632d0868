"""Rule train_tokenizer: byte-level BPE on an even sample of the corpus (tokenizer.max_train_bytes)."""
import zlib
from pathlib import Path

from shardmix import tokenizer
from shardmix.corpus import CorpusError, read_documents
from shardmix.jobs import fail, job_args

args = job_args()


def size_on_disk(path: Path) -> int:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    compressed = 4 if path.name.endswith(".gz") else 1  # text compresses about 4x
    return compressed * sum(p.stat().st_size for p in files)


def texts(limit):
    """Every document when the corpus fits the limit; else a seeded share spread over the whole
    corpus, so a corpus sorted by domain does not give a tokenizer of its first domains."""
    rate = min(1.0, limit / max(1, size_on_disk(Path(args["corpus"]["path"]))))
    used = 0
    for i, doc in enumerate(read_documents(args["corpus"])):
        if used >= limit:
            return
        if rate < 1.0 and zlib.crc32(str(i).encode()) / 2**32 >= rate:
            continue
        used += len(doc.text.encode("utf-8"))
        yield doc.text


try:
    tok = tokenizer.train_bpe(texts(args["max_train_bytes"]), args["vocab_size"], args["out"])
except CorpusError as e:
    fail(str(e))
print(f"trained a byte-level BPE tokenizer of {len(tok)} tokens into {args['out']}")
