"""Outputs that appear whole or not at all: written under a temporary name, renamed when complete.

A job killed while writing (preemption, kill -9, power loss) then leaves no folder or file
that looks finished, so the next run sees the output missing and redoes the job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

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
    yield tmp
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


@contextlib.contextmanager
def file(path: str | Path):
    """Yield a temporary path to write; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(path)
    yield tmp
    os.replace(tmp, path)


def write_bytes(path: str | Path, data: bytes) -> None:
    with file(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
