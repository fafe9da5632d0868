"""Which mixtures to score, and how they are batched into evaluation jobs.

A batch holds the mixtures whose most recently added member is the same shard. Adding
a shard therefore creates new batches and leaves every existing batch as it was.
"""

from __future__ import annotations

import hashlib
from itertools import combinations

from shardmix.naming import mixture_name


class MixtureError(ValueError):
    """A mixture list that names shards the run does not have."""


def _uniform(seed: int, name: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def candidate_mixtures(shards: list[str], spec: dict) -> list[tuple[str, ...]]:
    """Canonical mixtures of two or more shards chosen by the `mixtures` config."""
    chosen: set[tuple[str, ...]] = set()
    for size in range(2, min(spec["max_size"], len(shards)) + 1):
        chosen.update(tuple(sorted(c)) for c in combinations(shards, size))
    sample = spec.get("random")
    if sample:
        # each subset is kept by its own seeded draw, so a new shard never changes old picks
        for size in sample["sizes"]:
            for combo in combinations(sorted(shards), size):
                if _uniform(sample["seed"], mixture_name(combo)) < sample["fraction"]:
                    chosen.add(combo)
    chosen.update(_explicit(spec.get("explicit", []), shards, "mixtures.explicit"))
    return sorted(chosen, key=lambda m: (len(m), m))


def _explicit(lists: list[list[str]], shards: list[str], key: str) -> list[tuple[str, ...]]:
    known = set(shards)
    for i, members in enumerate(lists):
        missing = [m for m in members if m not in known]
        if missing:
            raise MixtureError(f"{key}[{i}] names shard {missing[0]!r}, which is not in this run "
                               f"(shards: {', '.join(shards)})")
    return [tuple(sorted(members)) for members in lists]


def validation_sample(scored: list[tuple[str, ...]], sample: dict | None,
                      recorded: dict | None = None) -> list[tuple[str, ...]]:
    """The seeded sample of scored mixtures to really train: the `count` lowest seeded draws.

    `recorded` is the sample an earlier run drew ({"random": its spec, "picks": [...]}): while
    its seed and sizes are the same, its picks stay and only a shortfall is topped up (a larger
    `count` adds picks), so adding shards never moves a pick (each pick costs a training run).
    """
    if not sample:
        return []
    pool = [m for m in scored if len(m) in sample["sizes"]]
    pool.sort(key=lambda m: _uniform(sample["seed"], mixture_name(m)))
    kept = []
    same = ("seed", "sizes")
    if recorded and all(recorded.get("random", {}).get(k) == sample[k] for k in same):
        known = set(pool)
        kept = [tuple(m) for m in recorded["picks"] if tuple(m) in known][:sample["count"]]
    rest = [m for m in pool if m not in set(kept)]
    return kept + rest[:max(0, sample["count"] - len(kept))]


def validation_mixtures(shards: list[str], picks: list[tuple[str, ...]], spec: dict) -> list[tuple[str, ...]]:
    """Mixtures to really train: explicit lists plus the sample's picks."""
    chosen = set(_explicit(spec.get("explicit", []), shards, "validation.explicit")) | set(picks)
    return sorted(chosen, key=lambda m: (len(m), m))


def batches(shards: list[str], mixtures: list[tuple[str, ...]], batch_size: int, prefix: str = "",
            singles: bool = True) -> dict[str, list[tuple]]:
    """Batch id -> list of shard tuples, grouped by newest member; `shards` is in order added.

    With `singles`, each shard's own model opens its batch. `prefix` keeps batches of
    another kind of model apart; it must hold a character shard names cannot have.
    """
    position = {s: i for i, s in enumerate(shards)}
    by_newest: dict[str, list[tuple]] = {s: [(s,)] if singles else [] for s in shards}
    for mix in mixtures:
        by_newest[max(mix, key=position.__getitem__)].append(mix)
    out = {}
    for newest, members in by_newest.items():
        for i in range(0, len(members), batch_size):
            out[f"{prefix}{newest}.{i // batch_size:03d}"] = members[i:i + batch_size]
    return out
