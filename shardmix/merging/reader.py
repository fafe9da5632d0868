"""Reading safetensors checkpoints one tensor at a time, each file's header checked first."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch

from shardmix import checksums


class MergeError(ValueError):
    """Models that cannot be averaged (different tensors or shapes), or a damaged checkpoint."""


# safetensors dtype names -> torch dtypes
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


def read_header(path: Path) -> tuple[dict, int]:
    """The safetensors JSON header (tensor name -> dtype, shape, offsets) and where data starts,
    checked against the file's size so a truncated or damaged file is named, not half-read."""
    def damaged(why):
        return MergeError(f"{path}: damaged or truncated checkpoint ({why}); delete {path.parent} and rerun "
                          "snakemake, which rebuilds it")

    size_on_disk = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise damaged(f"{size_on_disk} bytes")
        size = struct.unpack("<Q", prefix)[0]
        if size > size_on_disk - 8:
            raise damaged(f"header of {size} bytes in a file of {size_on_disk}")
        try:
            header = json.loads(f.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise damaged(f"unreadable header: {e}") from None
    header.pop("__metadata__", None)
    data_bytes = size_on_disk - 8 - size
    for name, info in header.items():
        try:
            begin, end = info["data_offsets"]
            count = math.prod(info["shape"]) * DTYPES[info["dtype"]].itemsize
        except (KeyError, TypeError, ValueError):
            raise damaged(f"tensor {name}: malformed entry") from None
        if end - begin != count or end > data_bytes:
            raise damaged(f"tensor {name} needs bytes {begin}..{end} of {data_bytes}")
    return header, 8 + size


def checkpoint_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint (one, or the shards its index names)."""
    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        return sorted({model_dir / f for f in json.loads(index.read_text())["weight_map"].values()})
    single = model_dir / "model.safetensors"
    if not single.exists():
        raise MergeError(f"{model_dir}: no model.safetensors (shardmix merges safetensors checkpoints); delete "
                         f"{model_dir} and rerun snakemake, which rebuilds it")
    return [single]


def stored_bytes(model_dirs: list) -> int:
    """Bytes of the checkpoints' safetensors files on disk."""
    return sum(f.stat().st_size for d in model_dirs for f in checkpoint_files(d))


class Reader:
    """Reads one tensor at a time with plain file reads. Memory-mapping the files instead
    would leave every page read so far mapped, so k models would sit in memory after all."""

    def __init__(self, model_dir):
        self.model_dir = Path(model_dir)
        checksums.check(self.model_dir)
        self.tensors = {}  # name -> (open file, dtype/shape/offsets, where data starts)
        self._handles = []
        for path in checkpoint_files(self.model_dir):
            header, data_start = read_header(path)
            handle = open(path, "rb")
            self._handles.append(handle)
            self.tensors.update({name: (handle, info, data_start) for name, info in header.items()})

    def get(self, name: str) -> torch.Tensor:
        handle, info, data_start = self.tensors[name]
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        if end == begin:
            return torch.empty(info["shape"], dtype=dtype)
        buffer = bytearray(end - begin)
        handle.seek(data_start + begin)
        handle.readinto(buffer)
        return torch.frombuffer(buffer, dtype=dtype).reshape(info["shape"])

    def close(self) -> None:
        for handle in self._handles:
            handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
