"""Which GPU a job uses where one machine runs several jobs on several GPUs.

`snakemake --resources gpu=8` lets 8 training or evaluation jobs run at once, but Snakemake
does not say which GPU is whose, and every job would pick cuda:0. Each job claims the first GPU
whose lock file it can lock (flock, held until the process ends, so a killed job frees its GPU
at once). Where the scheduler already gave the job its own GPUs (SLURM sets
CUDA_VISIBLE_DEVICES), the job sees one and claims nothing. Lock files live in a private
folder of the user under the system's temp folder: two users' runs on one machine do not see
each other's claims (give each its GPUs with CUDA_VISIBLE_DEVICES).
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path

_HELD: list[int] = []  # file descriptors of this process's locks: closing one frees the GPU


def lock_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"shardmix-gpus-{os.getuid()}"


def claim(count: int, folder: str | Path | None = None) -> int:
    """The index of a GPU (of `count`) no other job of this user holds, now held by this
    process; where every one is held (more jobs than GPUs), the one this process id picks."""
    folder = Path(folder) if folder else lock_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index in range(count):
        fd = os.open(folder / f"gpu{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _HELD.append(fd)
        return index
    index = os.getpid() % count
    print(f"all {count} GPUs are held by other jobs (is --resources gpu larger than the GPUs?); sharing "
          f"cuda:{index}", file=sys.stderr, flush=True)
    return index


def release() -> None:
    while _HELD:
        os.close(_HELD.pop())
