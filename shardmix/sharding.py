"""Split a corpus into shards (base units), each with train, held-out and seed parts.

Each shard's token stream is cut into chunks of `chunk_tokens`; a chunk goes to the
held-out part, to the seed model's data, or to the shard's training data by a draw
seeded with the shard's name. The draw depends on nothing else, so a shard's split is
the same whatever other shards exist, and seed data never overlaps held-out text.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

from shardmix import tokenizer as tokenization
from shardmix import tokens as token_files
from shardmix.corpus import CorpusError, Document
from shardmix.naming import safe_name

ENCODE_BATCH = 256


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


def group_tokens(docs: Iterable[Document], tok, spec: dict) -> tuple[dict, dict]:
    """Token stream per shard name, and the number of documents in each."""
    streams: dict[str, list[np.ndarray]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    raw_of: dict[str, str] = {}
    pending: list[tuple[str, str]] = []

    def flush():
        encoded = tokenization.encode_documents(tok, [text for _, text in pending])
        for (name, _), ids in zip(pending, encoded):
            streams[name].append(ids.astype(np.int32))
            counts[name] += 1
        pending.clear()

    for i, doc in enumerate(docs):
        raw = shard_key(doc, i, spec)
        name = safe_name(raw)
        if not name:
            raise CorpusError(f"{doc.where}: shard key {raw!r} leaves no usable file name")
        if raw_of.setdefault(name, raw) != raw:
            raise CorpusError(f"{doc.where}: shard keys {raw_of[name]!r} and {raw!r} both become the shard "
                              f"name {name!r}; rename one of them in the corpus")
        if doc.text:
            pending.append((name, doc.text))
        if len(pending) >= ENCODE_BATCH:
            flush()
    if pending:
        flush()
    if not streams:
        raise CorpusError("the corpus holds no text")
    return {n: np.concatenate(s) for n, s in streams.items()}, dict(counts)


def base_units(streams: dict, spec: dict) -> dict:
    """field_units: cut each domain larger than two units into equal-token base units."""
    if spec["method"] != "field_units":
        return streams
    unit = spec["unit_tokens"]
    out = {}
    for name, stream in streams.items():
        n = len(stream) // unit
        if n < 2:
            out[name] = stream
            continue
        for j, part in enumerate(np.array_split(stream, n)):
            unit_name = f"{name}-{j:03d}"
            if unit_name in streams:
                raise CorpusError(f"base unit {unit_name!r} of domain {name!r} clashes with a domain of that name")
            out[unit_name] = part
    return out


def split_stream(name: str, stream: np.ndarray, spec: dict) -> dict[str, np.ndarray]:
    chunk = spec["chunk_tokens"]
    n_chunks = -(-len(stream) // chunk)
    draw = np.random.default_rng(_stable_int(spec["seed"], name)).random(n_chunks)
    heldout = draw < spec["heldout_fraction"]
    seed = ~heldout & (draw < spec["heldout_fraction"] + spec["seed_fraction"])
    chunks = [stream[i * chunk:(i + 1) * chunk] for i in range(n_chunks)]

    def take(mask):
        picked = [c for c, m in zip(chunks, mask) if m]
        return np.concatenate(picked) if picked else np.zeros(0, dtype=stream.dtype)

    return {"train": take(~heldout & ~seed), "heldout": take(heldout), "seed": take(seed)}


def split_corpus(docs: Iterable[Document], tok, spec: dict, out_dir: str, manifest_path: str) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = len(tok)
    streams, doc_counts = group_tokens(docs, tok, spec)
    shards, seed_parts = {}, []
    for name, stream in sorted(base_units(streams, spec).items()):
        parts = split_stream(name, stream, spec)
        for part in ("train", "heldout"):
            token_files.save(out / f"{name}.{part}.npy", parts[part], vocab)
        seed_parts.append(parts["seed"])
        domain = name if name in doc_counts else name.rsplit("-", 1)[0]
        shards[name] = {"train_tokens": len(parts["train"]), "heldout_tokens": len(parts["heldout"]),
                        "seed_tokens": len(parts["seed"]), "documents": doc_counts[domain]}
    seed = np.concatenate(seed_parts)
    token_files.save(out / "seed.npy", seed, vocab)
    manifest = {"shards": shards, "seed_tokens": len(seed), "vocab_size": vocab,
                "total_tokens": int(sum(len(s) for s in streams.values()))}
    Path(manifest_path).write_text(json.dumps(manifest, indent=2))
    return manifest
