"""The one place that knows how shards, mixtures and models are named."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SEP = "+"


def safe_name(value: str) -> str:
    """A file-system-safe shard name: runs of other characters become '_'."""
    return _UNSAFE.sub("_", str(value)).strip("._")


def mixture_name(shards) -> str:
    """Canonical: the same set of shards gives the same name in any order."""
    return SEP.join(sorted(set(shards)))


def model_id(kind: str, shards=()) -> str:
    return "seed" if kind == "seed" else f"{kind}/{mixture_name(shards)}"
