"""Which mixtures to score, and how they are batched into evaluation jobs.

Mixtures are canonical names (shardmix.naming). A batch holds the mixtures of one family whose
most recently added member is the same shard. Adding a shard therefore creates new batches and
leaves every existing batch as it was. Families: `subset` (uniform weights), `weighted`
(explicit maps, simplex grids and Dirichlet samples over named shards: stable as the pool
grows) and `pool` (Dirichlet samples over all shards: redrawn over the grown pool, so they
contain the newest shard and land in its batches).
"""

from __future__ import annotations

import hashlib
from itertools import combinations

import numpy as np

from shardmix.naming import UNITS, MixtureNameError, is_weighted, members, mixture_name, quantize

FAMILY_TAG = {"subset": "", "weighted": "w", "pool": "r"}


class MixtureError(ValueError):
    """A mixture list that names shards the run does not have, or weights that make no mixture."""


def _uniform(seed: int, name: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _check_names(names, shards: list[str], key: str) -> None:
    known = set(shards)
    missing = [m for m in names if m not in known]
    if missing:
        raise MixtureError(f"{key} names shard {missing[0]!r}, which is not in this run "
                           f"(shards: {', '.join(shards)})")


def _named(entry, shards: list[str], key: str) -> str:
    """A config entry (list of shards: uniform; map shard -> weight) as a canonical name."""
    _check_names(list(entry), shards, key)
    try:
        name = mixture_name(entry)
    except MixtureNameError as e:
        raise MixtureError(f"{key}: {e}") from None
    if len(members(name)) < 2:
        raise MixtureError(f"{key}: a mixture needs two or more shards with a weight of at least "
                           f"1/{UNITS}, got {entry}")
    return name


def dirichlet_sample(shards: list[str], count: int, alpha: float, seed: int) -> list[str]:
    """`count` weight vectors over `shards` from a symmetric Dirichlet(alpha), as RegMix samples.
    The draw is keyed by the seed and the shard set; every member keeps at least 1/1000."""
    key = hashlib.blake2b(f"{seed}:{mixture_name(shards)}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(key, "big"))
    ordered = sorted(shards)
    out = []
    for draw in rng.dirichlet([alpha] * len(ordered), size=count):
        units = quantize(dict(zip(ordered, draw.tolist())))
        for s in ordered:  # a member rounded away comes back with one unit from the largest
            if s not in units:
                units[max(units, key=units.get)] -= 1
                units[s] = 1
        out.append(mixture_name(units))
    return out


def simplex_grid(shards: list[str], step: float) -> list[str]:
    """Every weight vector over `shards` whose weights are multiples of `step`, with two or more
    members (a single shard is its own model)."""
    n = round(1 / step)
    if abs(n * step - 1) > 1e-9:
        raise MixtureError(f"grid step {step} does not divide 1 (use e.g. 0.5, 0.25, 0.2, 0.1)")
    out = []
    for cuts in combinations(range(n + len(shards) - 1), len(shards) - 1):
        parts = np.diff([-1, *cuts, n + len(shards) - 1]) - 1  # stars and bars
        point = {s: int(p) for s, p in zip(shards, parts) if p > 0}
        if len(point) >= 2:
            out.append(mixture_name(point))
    return sorted(set(out))


def candidate_mixtures(shards: list[str], spec: dict) -> dict[str, str]:
    """Canonical name -> family of every mixture of two or more shards the `mixtures` config asks for."""
    chosen: dict[str, str] = {}
    for size in range(2, min(spec["max_size"], len(shards)) + 1):
        chosen.update((mixture_name(c), "subset") for c in combinations(shards, size))
    sample = spec.get("random")
    if sample:
        # each subset is kept by its own seeded draw, so a new shard never changes old picks
        for size in sample["sizes"]:
            for combo in combinations(sorted(shards), size):
                if _uniform(sample["seed"], mixture_name(combo)) < sample["fraction"]:
                    chosen[mixture_name(combo)] = "subset"
    for i, members_ in enumerate(spec.get("explicit", [])):
        chosen[_named(members_, shards, f"mixtures.explicit[{i}]")] = "subset"
    weighted: dict[str, str] = {}
    for i, entry in enumerate(spec.get("weighted", [])):
        weighted[_named(entry, shards, f"mixtures.weighted[{i}]")] = "weighted"
    for i, grid in enumerate(spec.get("grid", [])):
        _check_names(grid["shards"], shards, f"mixtures.grid[{i}].shards")
        try:
            weighted.update((m, "weighted") for m in simplex_grid(grid["shards"], grid["step"]))
        except MixtureError as e:
            raise MixtureError(f"mixtures.grid[{i}].step: {e}") from None
    for i, sample in enumerate(spec.get("dirichlet", [])):
        over = sample.get("shards")
        if over:
            _check_names(over, shards, f"mixtures.dirichlet[{i}].shards")
        elif len(shards) < 2:
            continue
        family = "weighted" if over else "pool"
        for m in dirichlet_sample(over or shards, sample["count"], sample["alpha"], sample["seed"]):
            weighted.setdefault(m, family)
    # a grid or sample point with equal weights is a subset already scored under its plain name
    return {**{m: f for m, f in weighted.items() if m not in chosen}, **chosen}


def _ordered(names) -> list[str]:
    return sorted(names, key=lambda m: (len(members(m)), m))


def validation_sample(scored: dict[str, str] | list[str], sample: dict | None, shards: list[str],
                      recorded: dict | None = None) -> list[str]:
    """The seeded sample of scored mixtures to really train: the lowest seeded draws, `count` in
    all, `weighted` of them weighted mixtures (else drawn from uniform and weighted alike).

    `recorded` is the sample an earlier run drew ({"random": its spec, "picks": [...]}): while
    its seed, sizes and weighted count are the same, its picks stay (as long as their shards are
    in the run) and only a shortfall is topped up, so adding shards never moves a pick (each
    pick costs a training run).
    """
    if not sample:
        return []
    pool = [m for m in scored if len(members(m)) in sample["sizes"]]
    pool.sort(key=lambda m: _uniform(sample["seed"], m))
    kept: list[str] = []
    same = ("seed", "sizes", "weighted")
    if recorded and all(recorded.get("random", {}).get(k) == sample.get(k) for k in same):
        known = set(shards)
        for m in recorded["picks"]:
            name = m if isinstance(m, str) else mixture_name(m)  # older records list members
            if set(members(name)) <= known and name not in kept:
                kept.append(name)
    kept = kept[:sample["count"]]
    want_weighted = sample.get("weighted")
    if want_weighted is None:
        rest = [m for m in pool if m not in kept]
        return kept + rest[:max(0, sample["count"] - len(kept))]
    want_weighted = min(want_weighted, sample["count"])
    have_weighted = sum(map(is_weighted, kept))
    picks = list(kept)
    for weighted, need in ((True, want_weighted - have_weighted),
                           (False, sample["count"] - want_weighted - (len(kept) - have_weighted))):
        rest = [m for m in pool if is_weighted(m) == weighted and m not in picks]
        if weighted and len(rest) < need:
            sizes = sorted({len(members(m)) for m in scored if is_weighted(m)})
            raise MixtureError(
                f"validation.random.weighted asks for {want_weighted} weighted mixtures of "
                f"{'/'.join(map(str, sample['sizes']))} members (validation.random.sizes), but the run scores only "
                f"{have_weighted + len(rest)} such (its weighted mixtures have "
                f"{'/'.join(map(str, sizes)) or 'no'} members); add sizes to validation.random.sizes or weighted "
                "mixtures of those sizes (mixtures.weighted, mixtures.dirichlet, mixtures.grid)")
        picks += rest[:max(0, need)]
    return picks


def validation_mixtures(shards: list[str], picks: list[str], spec: dict) -> list[str]:
    """Mixtures to really train: explicit ones (lists or weight maps) plus the sample's picks."""
    chosen = {_named(e, shards, f"validation.explicit[{i}]") for i, e in enumerate(spec.get("explicit", []))}
    return _ordered(chosen | set(picks))


def batches(shards: list[str], mixtures: dict[str, str], batch_size: int, prefix: str = "",
            singles: bool = True) -> dict[str, list[str]]:
    """Batch id -> mixture names, grouped by family and newest member; `shards` is in order added.

    With `singles`, each shard's own model opens its subset batch. `prefix` keeps batches of
    another kind of model apart; it must hold a character shard names cannot have.
    """
    position = {s: i for i, s in enumerate(shards)}
    groups: dict[tuple[str, str], list[str]] = {(s, ""): [s] if singles else [] for s in shards}
    for mix in _ordered(mixtures):
        newest = max(members(mix), key=position.__getitem__)
        groups.setdefault((newest, FAMILY_TAG[mixtures[mix]]), []).append(mix)
    out = {}
    for (newest, tag), names in groups.items():
        for i in range(0, len(names), batch_size):
            out[f"{prefix}{newest}.{tag}{i // batch_size:03d}"] = names[i:i + batch_size]
    return out
