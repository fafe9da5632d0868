"""What the seed model reads, and which eval sets and candidates it has already seen.

A source's split writes every unit's seed chunks into one file (`seed.npy`), unit after unit in
name order, and records each unit's seed tokens in the manifest: the span of a unit is known
without re-splitting, so `seed_domains` can keep the seed to some domains (the included ones,
say) while the split stays what it was.
"""

from __future__ import annotations

import numpy as np

from shardmix import overlap, tokens

BLOCK = 1 << 22  # seed tokens hashed at once


def spans(manifest: dict, domains: list[str] | None) -> list[tuple[int, int]]:
    """[start, stop) of the seed tokens of every unit of a source whose name or domain is in
    `domains` (None: every unit), adjacent spans joined."""
    out, offset = [], 0
    for unit in sorted(manifest["shards"]):
        info = manifest["shards"][unit]
        n = info["seed_tokens"]
        if domains is None or unit in domains or info.get("domain") in domains:
            if out and out[-1][1] == offset:
                out[-1] = (out[-1][0], offset + n)
            else:
                out.append((offset, offset + n))
        offset += n
    return out


def read(path: str, manifest: dict, domains: list[str] | None) -> np.ndarray:
    """A source's seed tokens restricted to `domains`."""
    ids = tokens.load(path)
    parts = [ids[a:b] for a, b in spans(manifest, domains)]
    return np.concatenate(parts) if parts else ids[:0]


def blocks(files: list[tuple[str, dict, list[str] | None]]):
    """The seed's tokens, BLOCK at a time (each block overlapping the next by nothing: spans
    across a block edge are lost, a 1 in BLOCK / n undercount)."""
    for path, manifest, domains in files:
        ids = tokens.load(path)
        for a, b in spans(manifest, domains):
            for start in range(a, b, BLOCK):
                yield np.asarray(ids[start:min(b, start + BLOCK)])


def seen_share(targets: dict[str, np.ndarray], seed_blocks, n: int) -> dict[str, float]:
    """Per target token array: the share of its n-token spans that occur in the seed's data.
    Memory: the targets' span hashes and one seed block's."""
    names = list(targets)
    hashes = [overlap.span_hashes(np.asarray(targets[name]), n) for name in names]
    ends = np.cumsum([len(h) for h in hashes])
    every = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    distinct, where = np.unique(every, return_inverse=True)  # sorted once, looked up per block
    hit = np.zeros(len(distinct), bool)
    for block in seed_blocks:
        found = np.unique(overlap.span_hashes(block, n))
        at = np.searchsorted(distinct, found)
        inside = at < len(distinct)
        at, found = at[inside], found[inside]
        hit[at[distinct[at] == found]] = True
    seen = hit[where.reshape(-1)]
    return {name: float(part.mean()) if len(part) else 0.0
            for name, part in zip(names, np.split(seen, ends[:-1]))}
