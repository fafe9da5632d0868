"""Split one corpus source into shards (base units), each with train, held-out and seed parts.

Each shard's token stream is cut into chunks of `chunk_tokens`; a chunk goes to the
held-out part, to the seed model's data, or to the shard's training data by a draw
seeded with the shard's name. The draw depends on nothing else, so a shard's split is
the same whatever other shards exist, and seed data never overlaps held-out text.

Two steps, each a stream through the data in bounded memory:
1. `tokenize_part`: the documents of one part of a source (a file, a byte range of one) are
   tokenized and appended to one scratch stream per shard key, with each document's length.
   Parts are independent, so separate jobs tokenize them at once.
2. `split_parts`: the parts' streams, read in part order (so, in document order), are cut into
   base units and chunks and written to the token files with their document indexes.
Memory grows with neither the corpus nor the number of documents: one block of tokens is held
at a time (plus one array per shard key in step 1, flushed every FLUSH_BYTES). The largest
document is the exception: it is tokenized whole.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Iterable

import numpy as np

from shardmix import atomic
from shardmix import tokenizer as tokenization
from shardmix import tokens as token_files
from shardmix.corpus import CorpusError, Document, LineOf
from shardmix.naming import safe_name

ENCODE_BATCH = 4096  # documents per tokenizer call at most; and at most tokenizer.BATCH_CHARS characters
FLUSH_BYTES = 32 << 20  # buffered ids of all shard keys of a part before they go to disk
BLOCK_TOKENS = 1 << 22  # ids read at once while splitting
STREAMS = "streams.json"
RANDOM_STREAM = "all"  # method random: one stream in document order, dealt out by document number


def _stable_int(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def shard_key(doc: Document, index: int, spec: dict) -> str:
    if spec["method"] == "random":
        return f"random-{_stable_int(spec['seed'], index) % spec['k']:02d}"
    field = spec["field"]
    if field not in doc.meta:
        keys = ", ".join(sorted(doc.meta)) or "none"
        raise CorpusError(f"{doc.where}: no field '{field}' to shard by (sharding.field; fields here: {keys})")
    value = doc.meta[field]
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise CorpusError(f"{doc.where}: field '{field}' is {type(value).__name__}; shard keys must be text")
    return str(value)


class EmptySource(CorpusError):
    """A source without a single document of text."""


class _Names:
    """Shard key -> file name, refusing two keys that would share a file."""

    def __init__(self):
        self.raw_of, self.folded, self.where, self.known = {}, {}, {}, {}

    def add(self, raw: str, where, name: str | None = None) -> str:
        if name is None and raw in self.known:
            return self.known[raw]  # seen and checked: one lookup per document
        name = safe_name(raw) if name is None else name
        if not name:
            raise CorpusError(f"{where}: shard key {raw!r} leaves no usable file name")
        if self.raw_of.setdefault(name, raw) != raw:
            raise CorpusError(f"{where}: shard keys {self.raw_of[name]!r} and {raw!r} both become the shard "
                              f"name {name!r}; rename one of them in the corpus")
        # files of both would be one file on a case-insensitive file system (macOS, Windows)
        if self.folded.setdefault(name.casefold(), name) != name:
            raise CorpusError(f"{where}: shard names {self.folded[name.casefold()]!r} and {name!r} differ only "
                              "in case, and their files would collide on a case-insensitive file system; rename "
                              "one of them in the corpus")
        self.where.setdefault(name, where)  # a LineOf stays uncounted until an error shows it
        self.known[raw] = name
        return name


def _saved(where):
    return [str(where.path), where.start, where.line] if isinstance(where, LineOf) else str(where)


def _loaded(where):
    return LineOf(Path(where[0]), where[1], where[2]) if isinstance(where, list) else where


def tokenize_part(docs: Iterable[Document], tok, spec: dict, out_dir: str | Path) -> dict:
    """Step 1: append each document's ids (ending in the end-of-text token) to its shard key's
    stream in `out_dir`; write `streams.json` (key -> name, first place seen, documents) last."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = token_files.dtype_for(len(tok))
    randomly = spec["method"] == "random"
    names = _Names()
    documents: dict[str, int] = {}
    buffered: dict[str, tuple[list, list]] = {}
    pending: list[tuple[str, str]] = []
    size = chars = 0

    def encode():
        nonlocal size
        keys = [name for name, _ in pending]
        ids, lengths = tokenization.encode_flat(tok, [text for _, text in pending if text], dtype)
        every = np.zeros(len(pending), np.int64)  # an empty document: no ids (random: still counted)
        every[[i for i, (_, text) in enumerate(pending) if text]] = lengths
        order_names = sorted(set(keys))
        code_of = {n: c for c, n in enumerate(order_names)}
        codes = np.fromiter((code_of[k] for k in keys), np.int64, len(keys))
        # the batch's ids regrouped by shard key (stable: documents keep their order), in one gather
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(every)[:-1]])
        sorted_lengths = every[order]
        firsts = np.concatenate([[0], np.cumsum(sorted_lengths)[:-1]])
        gathered = ids[np.repeat(starts[order] - firsts, sorted_lengths) + np.arange(len(ids))]
        cuts = np.cumsum(np.bincount(codes, weights=every, minlength=len(order_names)).astype(np.int64))
        doc_cuts = np.cumsum(np.bincount(codes, minlength=len(order_names)))
        for c, name in enumerate(order_names):
            lo, hi = (cuts[c - 1] if c else 0), cuts[c]
            ids_list, length_list = buffered.setdefault(name, ([], []))
            ids_list.append(gathered[lo:hi])
            length_list.append(sorted_lengths[(doc_cuts[c - 1] if c else 0):doc_cuts[c]])
        size += ids.nbytes
        pending.clear()
        if size >= FLUSH_BYTES:
            flush()

    def flush():
        nonlocal size
        for name, (ids_list, lengths) in buffered.items():
            token_files.Raw(out / name, dtype).append(np.concatenate(ids_list), np.concatenate(lengths))
        buffered.clear()
        size = 0

    for doc in docs:
        if randomly:  # dealt out in step 2, where a document's number in the whole source is known
            pending.append((RANDOM_STREAM, doc.text))
            documents[RANDOM_STREAM] = documents.get(RANDOM_STREAM, 0) + bool(doc.text)
        else:
            name = names.add(shard_key(doc, 0, spec), doc.where)
            if doc.text:
                pending.append((name, doc.text))
                documents[name] = documents.get(name, 0) + 1
        chars += len(doc.text)
        if len(pending) >= ENCODE_BATCH or chars >= tokenization.BATCH_CHARS:
            encode()
            chars = 0
    if pending:
        encode()
    flush()
    record = {"dtype": np.dtype(dtype).name, "random": randomly,
              "names": {n: {"raw": names.raw_of.get(n, n), "where": _saved(names.where.get(n, "")),
                            "documents": documents.get(n, 0)} for n in sorted(documents)}}
    atomic.write_text(out / STREAMS, json.dumps(record, indent=1), seal=False)
    return record


class _Stream:
    """One shard key's ids over every part, in part order, read a span at a time."""

    def __init__(self, raws: list[token_files.Raw]):
        self.raws = [r for r in raws if r.ids.exists()]
        self.sizes = [r.count() for r in self.raws]
        self.length = sum(self.sizes)
        self.dtype = raws[0].dtype

    def read(self, start: int, stop: int) -> np.ndarray:
        out, offset = [], 0
        for raw, size in zip(self.raws, self.sizes):
            lo, hi = max(start, offset), min(stop, offset + size)
            if lo < hi:
                out.append(token_files.read_span(raw.ids, self.dtype, lo - offset, hi - lo))
            offset += size
        return np.concatenate(out) if out else np.zeros(0, self.dtype)

    def lengths(self):
        """Document lengths in order, a block at a time."""
        for raw in self.raws:
            total = raw.lengths.stat().st_size // 8
            for start in range(0, total, BLOCK_TOKENS // 8):
                yield token_files.read_span(raw.lengths, np.int64, start, min(BLOCK_TOKENS // 8, total - start))


class _Ends:
    """Document ends of a stream (exclusive, in stream coordinates), taken in increasing order."""

    def __init__(self, stream: _Stream):
        self.blocks, self.offset, self.pending = stream.lengths(), 0, np.zeros(0, np.int64)

    def upto(self, stop: int) -> np.ndarray:
        taken = []
        while True:
            cut = int(np.searchsorted(self.pending, stop, side="right"))
            taken.append(self.pending[:cut])
            if cut < len(self.pending):
                self.pending = self.pending[cut:]
                break
            block = next(self.blocks, None)
            if block is None:
                self.pending = np.zeros(0, np.int64)
                break
            ends = self.offset + np.cumsum(block)
            self.offset = int(ends[-1]) if len(ends) else self.offset
            self.pending = ends
        return np.concatenate(taken)


def _units(name: str, length: int, spec: dict, taken: set) -> list[tuple[str, int, int]]:
    """(unit name, start, stop) of a domain's stream: field_units cuts a domain longer than two
    units into equal base units (np.array_split's sizes); else the domain is one shard."""
    n = length // spec["unit_tokens"] if spec["method"] == "field_units" else 0
    if n < 2:
        return [(name, 0, length)]
    size, extra = divmod(length, n)
    starts = [j * size + min(j, extra) for j in range(n + 1)]
    units = []
    for j in range(n):
        unit = f"{name}-{j:03d}"
        if unit in taken:
            raise CorpusError(f"base unit {unit!r} of domain {name!r} clashes with a domain of that name")
        units.append((unit, starts[j], starts[j + 1]))
    return units


PARTS = ("train", "heldout", "seed")


def _split_unit(stream: _Stream, ends: _Ends, unit: str, start: int, stop: int, spec: dict,
                writers: dict, indexes: dict) -> dict[str, int]:
    """Chunks of one unit to its train / held-out / seed files, a block of chunks at a time."""
    chunk = spec["chunk_tokens"]
    rng = np.random.default_rng(_stable_int(spec["seed"], unit))
    length = stop - start
    n_chunks = -(-length // chunk)
    written = np.zeros(3, np.int64)  # ids so far in each part's file
    previous = -1  # the part of the chunk before
    per_block = max(1, BLOCK_TOKENS // chunk)
    for c0 in range(0, n_chunks, per_block):
        c1 = min(n_chunks, c0 + per_block)
        draw = rng.random(c1 - c0)  # one draw per chunk, the same numbers as drawing all at once
        part = np.where(draw < spec["heldout_fraction"], 1,
                        np.where(draw < spec["heldout_fraction"] + spec["seed_fraction"], 2, 0))
        lo, hi = c0 * chunk, min(c1 * chunk, length)
        ids = stream.read(start + lo, start + hi)
        sizes = np.full(c1 - c0, chunk, np.int64)
        sizes[-1] = hi - (c1 - 1) * chunk
        of_id = np.repeat(part, sizes)
        # where each chunk starts in its part's file
        chunk_at = np.empty(c1 - c0, np.int64)
        for p in range(3):
            mine = part == p
            taken = np.cumsum(np.where(mine, sizes, 0))
            chunk_at[mine] = written[p] + (taken - sizes)[mine]
            writers[PARTS[p]].append(ids[of_id == p])
        # document ends: a source document's end, or where the file's previous chunk was not the
        # chunk before in the source (a document cut by the draw becomes two pieces)
        doc_end = ends.upto(start + hi) - start
        doc_chunk = (doc_end - 1) // chunk - c0
        doc_at = chunk_at[doc_chunk] + doc_end - (doc_chunk + c0) * chunk
        before = np.concatenate([[previous], part[:-1]])
        gap = part != before
        for p in range(3):
            cuts = chunk_at[gap & (part == p)]
            indexes[PARTS[p]].append(np.sort(np.concatenate([doc_at[part[doc_chunk] == p], cuts])).astype(np.uint64))
            written[p] += sizes[part == p].sum()
        previous = part[-1]
    return dict(zip(PARTS, map(int, written)))


def _gather(part_dirs: list[Path]) -> tuple[dict[str, _Stream], dict[str, int]]:
    """Shard key streams over every part, and their document counts."""
    records = [json.loads((d / STREAMS).read_text()) for d in part_dirs]
    dtypes = {r["dtype"] for r in records}
    if len(dtypes) > 1:
        raise CorpusError(f"parts of one source were tokenized with different tokenizers ({', '.join(dtypes)})")
    dtype = np.dtype(dtypes.pop()) if dtypes else np.uint16
    names, documents = _Names(), {}
    for record in records:
        for name, info in record["names"].items():
            names.add(info["raw"], _loaded(info["where"]), name)
            documents[name] = documents.get(name, 0) + info["documents"]
    streams = {n: _Stream([token_files.Raw(d / n, dtype) for d in part_dirs]) for n in documents}
    return {n: s for n, s in streams.items() if s.length}, documents


def _deal(stream: _Stream, spec: dict, scratch: Path) -> tuple[dict[str, _Stream], dict[str, int]]:
    """Method random: document i of the source goes to shard random-<hash(seed, i) mod k>."""
    out = scratch / "random"
    out.mkdir(parents=True)
    documents: dict[str, int] = {}
    raws = {}
    index, position = 0, 0
    for lengths in stream.lengths():
        keys = np.fromiter((_stable_int(spec["seed"], index + i) % spec["k"] for i in range(len(lengths))),
                           np.int64, len(lengths))
        index += len(lengths)
        ends = np.cumsum(lengths)
        done = 0
        while done < len(lengths):  # documents of at most BLOCK_TOKENS ids at a time (at least one)
            base = ends[done - 1] if done else 0
            stop = max(done + 1, int(np.searchsorted(ends, base + BLOCK_TOKENS, side="right")))
            ids = stream.read(position + int(base), position + int(ends[stop - 1]))
            of_id = np.repeat(keys[done:stop], lengths[done:stop])
            for key in np.unique(keys[done:stop]):
                mine = (keys[done:stop] == key) & (lengths[done:stop] > 0)
                if not mine.any():
                    continue
                name = f"random-{key:02d}"
                raws.setdefault(name, token_files.Raw(out / name, stream.dtype))
                raws[name].append(ids[of_id == key], lengths[done:stop][mine])
                documents[name] = documents.get(name, 0) + int(mine.sum())
            done = stop
        position += int(ends[-1]) if len(ends) else 0
    return {n: _Stream([r]) for n, r in raws.items()}, documents


def split_parts(part_dirs: list[str | Path], spec: dict, vocab: int, tokens_dir: str | Path,
                manifest_path: str | Path, provenance: dict, scratch: str | Path) -> dict:
    """Step 2: the parts' streams (in order) to each shard's train and held-out token files and
    the source's seed tokens in `tokens_dir`, each with its document index, then the manifest
    (sizes and `provenance`); each whole or not at all. `scratch` is removed after."""
    scratch = Path(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        streams, documents = _gather([Path(d) for d in part_dirs])
        if streams and spec["method"] == "random":
            streams, documents = _deal(streams[RANDOM_STREAM], spec, scratch)
        if not streams:
            raise EmptySource("the corpus holds no text")
        dtype = token_files.dtype_for(vocab)
        shards, seeds = {}, []
        with atomic.directory(tokens_dir) as out:
            for domain in sorted(streams):
                stream, ends = streams[domain], _Ends(streams[domain])
                for unit, start, stop in _units(domain, stream.length, spec, set(streams)):
                    writers = {p: token_files.Writer(out / f"{unit}.{p}.npy", dtype) for p in PARTS[:2]}
                    writers["seed"] = token_files.Writer(scratch / f"{unit}.seed.npy", dtype)
                    indexes = {p: token_files.IndexWriter(token_files.index_path(writers[p].path)) for p in PARTS}
                    sizes = _split_unit(stream, ends, unit, start, stop, spec, writers, indexes)
                    for p in PARTS:
                        writers[p].close()
                        indexes[p].close(sizes[p])
                    seeds.append((unit, sizes["seed"]))
                    shards[unit] = {"train_tokens": sizes["train"], "heldout_tokens": sizes["heldout"],
                                    "seed_tokens": sizes["seed"], "documents": documents[domain], "domain": domain}
            _concatenate_seed(sorted(seeds), scratch, out / "seed.npy", dtype)
        total = sum(s.length for s in streams.values())
        manifest = {"shards": dict(sorted(shards.items())), "seed_tokens": sum(n for _, n in seeds),
                    "vocab_size": vocab, "total_tokens": int(total), **provenance}
        atomic.write_text(manifest_path, json.dumps(manifest, indent=2))
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _concatenate_seed(units: list[tuple[str, int]], scratch: Path, path: Path, dtype) -> None:
    """The seed parts of every unit, in unit-name order, as one token file with its index."""
    writer, index, offset = token_files.Writer(path, dtype), token_files.IndexWriter(token_files.index_path(path)), 0
    header = token_files.header_size(dtype)
    for unit, length in units:
        part = scratch / f"{unit}.seed.npy"
        for start in range(0, length, BLOCK_TOKENS):
            writer.append(token_files.read_span(part, dtype, start, min(BLOCK_TOKENS, length - start), header))
        ends_path = token_files.index_path(part)
        count = (ends_path.stat().st_size - header) // 8
        for start in range(0, count, BLOCK_TOKENS // 8):
            ends = token_files.read_span(ends_path, np.uint64, start, min(BLOCK_TOKENS // 8, count - start), header)
            index.append(np.uint64(offset) + ends)
        offset += length
    writer.close()
    index.close(offset)


def split_source(docs: Iterable[Document], tok, spec: dict, tokens_dir: str | Path, manifest_path: str | Path,
                 provenance: dict, scratch: str | Path | None = None) -> dict:
    """Both steps in one process: the documents as a single part."""
    scratch = Path(scratch) if scratch else Path(f"{tokens_dir}.scratch")
    part = scratch / "part"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        tokenize_part(docs, tok, spec, part)
        return split_parts([part], spec, len(tok), tokens_dir, manifest_path, provenance, scratch / "split")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class ShardSizeError(ValueError):
    """Shards the configured run cannot use, all of them in one message."""


def shard_rows(manifests: dict, includes: dict, budget: int, context: int, min_tokens: int) -> list[dict]:
    """One row per shard of every split source (source -> manifest; source -> its
    `sharding.include`): sizes, whether the run uses it, whether it fits the budget."""
    rows = []
    for source, manifest in manifests.items():
        wanted = includes[source]
        for name, info in manifest["shards"].items():
            trains = info["train_tokens"] >= budget + 1 and info["train_tokens"] > context
            evaluates = info["heldout_tokens"] >= min_tokens
            rows.append({"source": source, "shard": name, "used": wanted is None or name in wanted,
                         "documents": info["documents"], "train_tokens": info["train_tokens"],
                         "heldout_tokens": info["heldout_tokens"], "seed_tokens": info["seed_tokens"],
                         "fits_budget": trains and evaluates})
    return rows


def check_shards(sources: dict, foundation: list[str], budget: int, context: int, min_tokens: int,
                 seed_needed: bool) -> dict[str, str]:
    """Shard -> source for the shards the run uses, in the order they were added (sources in
    config order, then each source's `include` order). Every problem is reported at once."""
    problems, order = [], {}
    rows = shard_rows({s: m for s, (_, m) in sources.items()},
                      {s: spec["sharding"]["include"] for s, (spec, _) in sources.items()}, budget, context, min_tokens)
    for source, (spec, manifest) in sources.items():
        available = manifest["shards"]
        wanted = spec["sharding"]["include"]
        missing = [n for n in wanted or [] if n not in available]
        if missing:
            problems.append(f"{spec['key']}.sharding.include names shard(s) {', '.join(map(repr, missing))}, which "
                            f"source '{source}' does not have (its shards: {', '.join(sorted(available))})")
        for name in wanted if wanted is not None else sorted(available):
            if name in order and name in available:
                problems.append(f"shard '{name}' is in sources '{order[name]}' and '{source}'; shard names must be "
                                "unique: leave it out of one source's sharding.include")
            elif name in available:
                order[name] = source
    if seed_needed:
        seed_tokens = sum(sources[s][1]["seed_tokens"] for s in foundation if s in sources)
        if seed_tokens <= context:
            problems.append(f"sharding.seed_fraction leaves {seed_tokens} seed tokens in the foundation sources "
                            f"({', '.join(foundation)}), too little text to pretrain the seed model")
    small = [r for r in rows if r["shard"] in order and order[r["shard"]] == r["source"] and not r["fits_budget"]]
    if small:
        lines = [f"  {r['shard']} ({r['source']}): {r['train_tokens']} training tokens, {r['heldout_tokens']} "
                 "held-out tokens" for r in small]
        smallest_train = min(r["train_tokens"] for r in small)
        smallest_heldout = min(r["heldout_tokens"] for r in small)
        problems.append(
            f"{len(small)} shard(s) too small for shard_training.tokens = {budget} (needs {budget + 1} training "
            f"tokens) and evaluation.min_tokens = {min_tokens} held-out tokens:\n" + "\n".join(lines) +
            f"\nTo fit them all: lower shard_training.tokens to at most {max(1, smallest_train - 1)}"
            + (f" and evaluation.min_tokens to at most {smallest_heldout}" if smallest_heldout < min_tokens else "")
            + " (or raise sharding.heldout_fraction), or leave them out with sharding.include.")
    if problems:
        raise ShardSizeError("\n".join(problems))
    return order
