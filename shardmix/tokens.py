"""Flat token files: one .npy array of ids per shard split (memory-mapped when read)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from shardmix import atomic, checksums


class TokenFileError(OSError):
    """A token file that could not be written, named with the reason."""


def dtype_for(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def save(path: str | Path, ids: np.ndarray, vocab_size: int, seal: bool = False) -> None:
    """Write `ids` at `path` (inside a folder that atomic.directory seals, or, with `seal`, whole
    and sealed on its own)."""
    ids = np.asarray(ids).astype(dtype_for(vocab_size), copy=False)
    try:
        if seal:
            with atomic.file(path) as tmp, open(tmp, "wb") as f:
                np.save(f, ids)
        else:
            np.save(path, ids)
    except OSError as e:
        full = e.errno == errno.ENOSPC or "requested and" in str(e)  # numpy's short write on a full disk
        folder = Path(path).parent
        free = shutil.disk_usage(folder).free if folder.exists() else 0
        why = (f"no space left on the device ({free / 2**20:.0f} MiB free, {ids.nbytes / 2**20:.1f} MiB needed)"
               if full else (e.strerror or str(e)))
        raise TokenFileError(e.errno or errno.EIO, f"{path}: could not write token file: {why}") from None


def load(path: str | Path) -> np.ndarray:
    """The token ids at `path`, memory-mapped, after checking them against their seal."""
    checksums.check_file(path)
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:  # a truncated file in an unsealed (older) folder
        raise checksums.DamagedArtifact(f"{path}: damaged token file ({e}); delete "
                                        f"{os.path.dirname(path)} and rerun snakemake, which rebuilds it") from None
