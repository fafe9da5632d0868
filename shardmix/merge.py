"""Merging models by named methods (weighted average, task arithmetic), streamed one tensor at a time.

Memory stays at one target model plus one tensor per input model, whatever the
number of models merged: tensors are read one by one from the safetensors files.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch

from shardmix import checksums
from shardmix.naming import method_spec, needs_seed


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


class _Reader:
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


def linear(weights, members, seed=None):
    """Weighted average of the members' tensors: sum_i w_i * theta_i (weights sum to 1)."""
    acc = None
    for w, t in zip(weights, members):
        term = w * t.to(torch.float32)
        acc = term if acc is None else acc + term
    return acc


def task_arithmetic(weights, members, seed, lam: float):
    """Seed plus lam times the weighted sum of the members' deltas from the seed
    (Ilharco et al. 2023); lam = 1 is `linear`, lam > 1 undoes the averaging's dilution."""
    seed = seed.to(torch.float32)
    return seed + lam * (linear(weights, members) - seed)


METHODS = {"linear": linear, "task_arithmetic": task_arithmetic}
# methods of the form a * (weighted average of the members) + b * seed, as (a, b) from the
# method's params: a resident pool builds them from a running sum (shardmix.pool)
AFFINE = {"linear": lambda: (1.0, 0.0), "task_arithmetic": lambda lam: (lam, 1.0 - lam)}


def merge_into(model: torch.nn.Module, model_dirs: list, weights: list[float] | None = None,
               method: dict | None = None, seed_dir=None) -> torch.nn.Module:
    """Load the merge of the checkpoints in `model_dirs` into `model`, in place, one tensor at a
    time. `weights` default to uniform; `method` (method_spec) to linear; methods relative to
    the seed need `seed_dir`."""
    if not model_dirs:
        raise MergeError("nothing to merge")
    weights = weights or [1 / len(model_dirs)] * len(model_dirs)
    if len(weights) != len(model_dirs):
        raise MergeError(f"{len(weights)} weights for {len(model_dirs)} models")
    method = method or method_spec("linear")
    if needs_seed(method) and seed_dir is None:
        raise MergeError(f"merge method {method['label']} needs the seed model")
    readers = [_Reader(d) for d in model_dirs]
    seed = _Reader(seed_dir) if needs_seed(method) else None
    try:
        _merge(model, readers, weights, method, seed)
    finally:
        for r in readers + ([seed] if seed else []):
            r.close()
    return model


def check_compatible(model: torch.nn.Module, readers: list[_Reader]) -> dict:
    """The model's state dict, once every reader holds the same tensors, all of them the model's
    and of its shapes (read from the headers, before any tensor data)."""
    names = set(readers[0].tensors)
    for r in readers[1:]:
        if set(r.tensors) != names:
            diff = sorted(names ^ set(r.tensors))[:3]
            raise MergeError(f"{r.model_dir} and {readers[0].model_dir} hold different tensors "
                             f"(e.g. {', '.join(diff)}); only models of one architecture can be merged")
    target = model.state_dict()
    unknown = sorted(names - set(target))
    if unknown:
        raise MergeError(f"{readers[0].model_dir}: tensor {unknown[0]} is not part of the evaluation model")
    for r in readers:
        for name, info in r.tensors.items():
            if tuple(info[1]["shape"]) != tuple(target[name].shape):
                raise MergeError(f"{r.model_dir}: tensor {name} has shape {tuple(info[1]['shape'])}, expected "
                                 f"{tuple(target[name].shape)}; models of different shapes cannot be merged")
    return target


def _merge(model: torch.nn.Module, readers: list[_Reader], weights: list[float], method: dict,
           seed: _Reader | None) -> None:
    target = check_compatible(model, readers + ([seed] if seed else []))
    combine = METHODS[method["name"]]
    with torch.no_grad():
        for name in sorted(readers[0].tensors):
            members = (r.get(name) for r in readers)  # one member tensor in memory at a time
            target[name].copy_(combine(weights, members, seed.get(name) if seed else None, **method["params"]))
