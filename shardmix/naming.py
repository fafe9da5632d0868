"""The one place that knows how shards, mixtures and models are named.

A mixture is a set of shards with weights summing to 1. Its canonical name lists the members
in sorted order, joined by '+'; weights are kept in thousandths and written after '@' unless
they are all equal, so a uniform mixture keeps the plain subset name (`a+b+c`), and the same
shards and weights give the same name in any order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SEP = "+"
AT = "@"  # cannot occur in a shard name (safe_name), so it can separate a member from its weight
UNITS = 1000  # weight resolution: thousandths


class MixtureNameError(ValueError):
    """Weights that do not make a mixture (none positive, negative, not numbers)."""


def safe_name(value: str) -> str:
    """A file-system-safe shard name: runs of other characters become '_'."""
    return _UNSAFE.sub("_", str(value)).strip("._")


def quantize(weights: Mapping[str, float]) -> dict[str, int]:
    """Weights -> thousandths summing to exactly UNITS (largest remainder); members whose share
    rounds to nothing are dropped. Uniform weights stay uniform (equal units are not rounded apart)."""
    if any(not isinstance(w, (int, float)) or w < 0 for w in weights.values()):
        raise MixtureNameError(f"weights must be non-negative numbers, got {dict(weights)}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise MixtureNameError(f"weights {dict(weights)} have no positive member")
    shares = {s: UNITS * w / total for s, w in sorted(weights.items()) if w > 0}
    units = {s: int(v) for s, v in shares.items()}
    by_remainder = sorted(shares, key=lambda s: (-(shares[s] - units[s]), s))
    for s in by_remainder[:UNITS - sum(units.values())]:
        units[s] += 1
    return {s: u for s, u in units.items() if u > 0}


def _is_uniform(weights: Mapping[str, float]) -> bool:
    total = sum(weights.values())
    k = len(weights)
    return all(abs(w / total - 1 / k) <= 0.5 / UNITS for w in weights.values())


def mixture_name(mixture) -> str:
    """Canonical name of a mixture: an iterable of shard names (uniform weights) or a mapping
    shard -> weight (normalised; zero weights leave the mixture)."""
    if not isinstance(mixture, Mapping):
        return SEP.join(sorted(set(mixture)))
    positive = {s: float(w) for s, w in mixture.items() if w > 0}
    if positive and _is_uniform(positive):
        return SEP.join(sorted(positive))
    units = quantize(mixture)
    if len(set(units.values())) == 1:
        return SEP.join(units)
    return SEP.join(f"{s}{AT}{u / UNITS:g}" for s, u in units.items())


def weights(name: str) -> dict[str, float]:
    """Member -> weight of a canonical mixture name, in name order (sorted members)."""
    parts = name.split(SEP)
    if not any(AT in p for p in parts):
        return {p: 1 / len(parts) for p in parts}
    out = {}
    for p in parts:
        shard, _, weight = p.rpartition(AT)
        out[shard] = float(weight)
    return out


def n_eff(name: str) -> float:
    """Effective number of members, 1 / sum of squared weights: k for k shards in equal parts."""
    return 1 / sum(w ** 2 for w in weights(name).values())


def members(name: str) -> list[str]:
    return list(weights(name))


def is_weighted(name: str) -> bool:
    return AT in name


def weights_column(name: str) -> str:
    """The `weights` column of the scores: member weights in the order of `shards`, '+'-joined."""
    return SEP.join(f"{w:.4g}" for w in weights(name).values())


def model_id(kind: str, mixture: str = "", method: str = "linear") -> str:
    """`seed`, `shard/a`, `merged/a+b`, `full/a@0.25+b@0.75`; merges by another method than
    linear averaging carry it: `merged[task_arithmetic:1.5]/a+b`."""
    if kind == "seed":
        return "seed"
    if kind == "merged" and method != "linear":
        return f"merged[{method}]/{mixture}"
    return f"{kind}/{mixture}"


FIXED = "fixed"  # a mixture trained at a total budget other than its members' shard budgets


def fixed_id(mixture: str, total: int) -> str:
    """`fixed131072/a+b`: the mixture trained on `total` tokens in all, each member its weight's share."""
    return f"{FIXED}{total}/{mixture}"


def budget_tokens(model: str, shard_tokens: int) -> int | None:
    """Tokens of continued pretraining behind a model of the scores table (the seed's own left
    out): a shard's budget; k of them for a k-shard mixture trained per shard (`full/`) or merged
    from k shard models; a fixed-budget mixture's total; None for a model of another kind."""
    kind, _, mixture = model.partition("/")
    if model == "seed":
        return 0
    if kind == "shard":
        return shard_tokens
    if kind == "full" or kind.startswith("merged"):
        return len(members(mixture)) * shard_tokens
    if kind.startswith(FIXED) and kind[len(FIXED):].isdigit():
        return int(kind[len(FIXED):])
    return None


def short(mixture: str, width: int = 44) -> str:
    """A mixture name a reader can scan in a table: the heaviest members first, weights as `.32`,
    cut after about `width` characters: `kjv_law .32, shakespeare_histories .32, +2 more`."""
    if not mixture:
        return ""
    ranked = sorted(weights(mixture).items(), key=lambda kv: -kv[1]) if AT in mixture else \
        [(s, None) for s in members(mixture)]
    parts, used = [], 0
    for i, (s, w) in enumerate(ranked):
        part = s if w is None else f"{s} {w:.2f}".replace(" 0.", " .")
        if parts and used + len(part) > width:
            return ", ".join(parts) + f", +{len(ranked) - i} more"
        parts.append(part)
        used += len(part) + 2
    return ", ".join(parts)
