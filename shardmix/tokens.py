"""Flat token files: one .npy array of ids per shard split (memory-mapped when read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def dtype_for(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def save(path: str | Path, ids: np.ndarray, vocab_size: int) -> None:
    np.save(path, np.asarray(ids).astype(dtype_for(vocab_size), copy=False))


def load(path: str | Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")
