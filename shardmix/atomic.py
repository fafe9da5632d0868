"""Outputs that appear whole or not at all: written under a temporary name, renamed when complete.

A job killed while writing (preemption, kill -9, power loss) then leaves no folder or file
that looks finished, so the next run sees the output missing and redoes the job. Each is sealed
with its SHA-256 (shardmix.checksums) before the rename, so later damage is found where it is read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from shardmix import checksums

PARTIAL = ".partial"


def _partial(path: Path) -> Path:
    return path.with_name(f"{path.name}{PARTIAL}")


@contextlib.contextmanager
def directory(path: str | Path):
    """Yield a fresh temporary folder; on success it replaces `path` in one rename."""
    path = Path(path)
    tmp = _partial(path)
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed job
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # half an output is of no use, and may fill a disk
        raise
    checksums.seal_dir(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


@contextlib.contextmanager
def file(path: str | Path, seal: bool = True):
    """Yield a temporary path to write; on success it replaces `path` in one rename (sealed
    with `<path>.sha256` unless `seal` is false)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if seal:
        checksums.seal_file(path, tmp)
    os.replace(tmp, path)


def write_bytes(path: str | Path, data: bytes, seal: bool = True) -> None:
    with file(path, seal) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: str | Path, text: str, seal: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), seal)
