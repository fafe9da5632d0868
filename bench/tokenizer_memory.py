"""Tokenizer training on one huge document, in a process of its own so the peak RSS is the
training's: the document fed whole (as before pieces) against in `training_pieces`.

The document is real text: the running Python's standard-library sources joined end to end
(and repeated) up to `mb` megabytes.
"""

from __future__ import annotations

import sysconfig
import tempfile
import time
from pathlib import Path

from bench import kit


def _document(mb: int) -> str:
    lib = Path(sysconfig.get_paths()["stdlib"])
    parts, size = [], 0
    while size < mb * 2**20:
        for path in sorted(lib.rglob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(text)
            size += len(text)
            if size >= mb * 2**20:
                break
    return "".join(parts)[: mb * 2**20]


def train(mb: int, pieces: bool, vocab: int = 8192) -> dict:
    from shardmix import tokenizer

    doc = _document(mb)
    texts = tokenizer.training_pieces(doc) if pieces else [doc]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        tok = tokenizer.train_bpe(iter(texts), vocab, out)
    return {"document_mb": mb, "pieces": len(texts), "vocab": len(tok), "seconds": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    kit.serve({"train": train})
