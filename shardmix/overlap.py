"""Which candidates repeat text of a held-out part or an eval set.

A candidate unit overlaps when it shares any span of `n` tokens with a protected token
array. Spans are compared by a 64-bit polynomial hash (wrapping arithmetic), so the check
is a sorted-array lookup whatever the sizes; a hash collision can only exclude a candidate
too many, never let a repeated span through.
"""

from __future__ import annotations

import numpy as np

_BASE = np.uint64(0x9E3779B97F4A7C15)
_BLOCK = 1 << 14  # units hashed at once: bounds memory to ~_BLOCK * unit_tokens * 8 bytes


def span_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """Hashes of every n-token span along the last axis."""
    ids = np.asarray(ids).astype(np.uint64)
    width = ids.shape[-1] - n + 1
    if width <= 0:
        return np.zeros(ids.shape[:-1] + (0,), dtype=np.uint64)
    h = np.zeros(ids.shape[:-1] + (width,), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * _BASE + ids[..., j:j + width] + np.uint64(1)
    return h


def protected_hashes(arrays, n: int) -> np.ndarray:
    """Sorted unique hashes of every n-token span of the protected arrays."""
    found = [span_hashes(a, n) for a in arrays if len(a) >= n]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)


def overlapping(units: np.ndarray, protected: np.ndarray, n: int) -> np.ndarray:
    """Boolean per unit: shares an n-token span with the protected hashes."""
    out = np.zeros(len(units), dtype=bool)
    if len(protected) == 0:
        return out
    for start in range(0, len(units), _BLOCK):
        h = span_hashes(units[start:start + _BLOCK], n)
        out[start:start + len(h)] = np.isin(h, protected).any(axis=1)
    return out
