"""Split one corpus source into shards (base units), each with train, held-out and seed parts.

Each shard's token stream is cut into chunks of `chunk_tokens`; a chunk goes to the
held-out part, to the seed model's data, or to the shard's training data by a draw
seeded with the shard's name. The draw depends on nothing else, so a shard's split is
the same whatever other shards exist, and seed data never overlaps held-out text.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Iterable

import numpy as np

from shardmix import atomic
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


class EmptySource(CorpusError):
    """A source without a single document of text."""


def group_tokens(docs: Iterable[Document], tok, spec: dict) -> tuple[dict, dict]:
    """Token stream per shard name, and the number of documents in each."""
    dtype = token_files.dtype_for(len(tok))
    streams: dict[str, list[np.ndarray]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    raw_of: dict[str, str] = {}
    folded: dict[str, str] = {}
    pending: list[tuple[str, str]] = []

    def flush():
        encoded = tokenization.encode_documents(tok, [text for _, text in pending], dtype)
        for (name, _), ids in zip(pending, encoded):
            streams[name].append(ids)
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
        # files of both would be one file on a case-insensitive file system (macOS, Windows)
        if folded.setdefault(name.casefold(), name) != name:
            raise CorpusError(f"{doc.where}: shard names {folded[name.casefold()]!r} and {name!r} differ only in "
                              "case, and their files would collide on a case-insensitive file system; rename one "
                              "of them in the corpus")
        if doc.text:
            pending.append((name, doc.text))
        if len(pending) >= ENCODE_BATCH:
            flush()
    if pending:
        flush()
    if not streams:
        raise EmptySource("the corpus holds no text")
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


def split_source(docs: Iterable[Document], tok, spec: dict, tokens_dir: str, manifest_path: str,
                 provenance: dict) -> dict:
    """Write each shard's train and held-out token files and the source's seed tokens into
    `tokens_dir`, then the manifest (sizes and `provenance`), each whole or not at all."""
    vocab = len(tok)
    streams, doc_counts = group_tokens(docs, tok, spec)
    shards, seed_parts = {}, []
    with atomic.directory(tokens_dir) as out:
        for name, stream in sorted(base_units(streams, spec).items()):
            parts = split_stream(name, stream, spec)
            for part in ("train", "heldout"):
                token_files.save(out / f"{name}.{part}.npy", parts[part], vocab)
            seed_parts.append(parts["seed"])
            domain = name if name in doc_counts else name.rsplit("-", 1)[0]
            shards[name] = {"train_tokens": len(parts["train"]), "heldout_tokens": len(parts["heldout"]),
                            "seed_tokens": len(parts["seed"]), "documents": doc_counts[domain], "domain": domain}
        seed = np.concatenate(seed_parts)
        token_files.save(out / "seed.npy", seed, vocab)
    manifest = {"shards": shards, "seed_tokens": len(seed), "vocab_size": vocab,
                "total_tokens": int(sum(len(s) for s in streams.values())), **provenance}
    atomic.write_text(manifest_path, json.dumps(manifest, indent=2))
    return manifest


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
