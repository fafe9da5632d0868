"""An even, seeded sample of a corpus's text that reads little more than what it keeps: what
the tokenizer is trained on (tokenizer.max_train_bytes), whatever the corpus's size.

Each file gets a share of the budget in proportion to its size. Where a format allows seeking,
only the sample is read:
- a plain JSONL file: windows of WINDOW bytes at a seeded offset in each of equal strata of the file;
- a Parquet file: a seeded choice of row groups, one per stratum;
- a saved dataset: windows of rows, as for JSONL;
- a folder of .txt files: a seeded choice of whole files.
A gzip file can only be read from its start: it is decompressed whole, but only the lines kept
are decoded and parsed. A corpus within the budget is read whole, as it always was.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from shardmix import corpus

WINDOW = 1 << 20  # the largest window; a file's share of the budget is read in at least WINDOWS of them
WINDOWS = 64
MIN_WINDOW = 16 << 10
GZIP_RATIO = 4  # text compresses about 4x: a gzip file stands for this many bytes of text


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def text_bytes(path: Path) -> int:
    ratio = GZIP_RATIO if path.name.endswith(".gz") else 1
    return ratio * sum(p.stat().st_size for p in corpus.source_files(path))


@dataclass
class Sample:
    specs: list[dict]
    limit: int
    seed: int = 0
    read_bytes: int = 0  # bytes read from disk (decompressed bytes for gzip files)
    kept_bytes: int = 0
    documents: int = 0

    def texts(self) -> Iterator[str]:
        """Texts of the documents kept, in corpus order."""
        # a folder's format is found by listing it: once per source, not per file
        pieces = [(spec, corpus.source_format(spec), piece) for spec in self.specs
                  for piece in corpus.pieces_of(spec, spec.get("key", "corpus"))]
        total = sum(text_bytes(Path(p.file)) for _, _, p in pieces)
        rate = min(1.0, self.limit / max(1, total))
        for number, (spec, fmt, piece) in enumerate(pieces):
            for doc in self._documents(spec, fmt, Path(piece.file), rate, number):
                if self.kept_bytes >= self.limit:
                    return
                size = len(doc.text.encode("utf-8"))
                self.kept_bytes += size
                self.documents += 1
                yield doc.text

    def _documents(self, spec: dict, fmt: str, path: Path, rate: float, number: int) -> Iterator[corpus.Document]:
        if rate >= 1.0:
            self.read_bytes += text_bytes(path)
            yield from corpus.read_pieces(spec, [corpus.Piece(str(path))], fmt)
            return
        rng = np.random.default_rng(_seed(self.seed, number))  # the file's place, not its path: movable
        field_name = spec.get("text_field", "text")
        if fmt == "jsonl" and not path.name.endswith(".gz"):
            size = path.stat().st_size
            for start, stop in _windows(size, rate * size, WINDOW, rng, MIN_WINDOW):
                self.read_bytes += stop - start
                yield from corpus.read_jsonl(path, field_name, spec, span=(start, stop))
        elif fmt == "jsonl":
            self.read_bytes += text_bytes(path)
            threshold = rate * 2**32
            yield from corpus.read_jsonl(path, field_name, spec,
                                          keep=lambda n: zlib.crc32(f"{self.seed}:{n}".encode()) < threshold)
        elif fmt == "parquet":
            rows = corpus.parquet_groups(path)
            size = path.stat().st_size
            chosen = sorted({int(rng.integers(a, max(a + 1, b))) for a, b in
                             _strata(len(rows), max(1, round(rate * len(rows))))})
            self.read_bytes += sum(size * rows[g] // max(1, sum(rows)) for g in chosen)
            yield from corpus.read_parquet(path, field_name, spec, groups=chosen)
        elif fmt == "hf_disk":
            yield from self._dataset_windows(spec, path, rate, rng)
        elif fmt == "text_file" or fmt == "text_dir" and rng.random() < rate:  # a text file is one document
            self.read_bytes += path.stat().st_size
            yield from corpus.read_pieces(spec, [corpus.Piece(str(path))], fmt)

    def _dataset_windows(self, spec, path, rate, rng):
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds[spec.get("split", "train")]
        n = len(ds)
        per_row = text_bytes(path) / max(1, n)
        window_rows = max(1, int(WINDOW / max(1.0, per_row)))
        for start, stop in _windows(n, rate * n, window_rows, rng):
            self.read_bytes += int((stop - start) * per_row)
            yield from corpus.read_hf_disk(path, spec.get("text_field", "text"), spec,
                                            corpus.Piece(str(path)), rows=(start, stop))


def _strata(length: int, count: int) -> list[tuple[int, int]]:
    edges = [length * i // count for i in range(count + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def _windows(length: int, budget: float, window: int, rng, smallest: int = 1) -> list[tuple[int, int]]:
    """Windows (at most `window`, at least `smallest` long, at least WINDOWS of them where that
    allows) at a seeded place in each of equal strata of [0, length), adding up to about `budget`."""
    window = max(smallest, min(window, int(budget / WINDOWS)))
    count = max(1, round(budget / window))
    width = max(1, min(window, int(budget)))
    out = []
    for a, b in _strata(length, count):
        start = a + int(rng.integers(0, max(1, b - a - width)))
        out.append((start, min(b, start + width)))
    return out
