"""Uniform parameter averaging of models, streamed one tensor at a time.

Memory stays at one target model plus one tensor per input model, whatever the
number of models merged, because tensors are read lazily from safetensors files.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open


class MergeError(ValueError):
    """Models that cannot be averaged (different tensors or shapes)."""


def tensor_files(model_dir: str | Path) -> dict[str, Path]:
    """Which safetensors file holds each tensor (handles sharded checkpoints)."""
    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: model_dir / fname for name, fname in weight_map.items()}
    single = model_dir / "model.safetensors"
    if not single.exists():
        raise MergeError(f"{model_dir}: no model.safetensors (shardmix merges safetensors checkpoints)")
    with safe_open(str(single), "pt") as f:
        return {name: single for name in f.keys()}


class _Reader:
    """Lazy tensor access across the files of one checkpoint."""

    def __init__(self, model_dir):
        self.model_dir = Path(model_dir)
        self.files = tensor_files(model_dir)
        self._open = {}

    def get(self, name: str) -> torch.Tensor:
        path = self.files[name]
        if path not in self._open:
            self._open[path] = safe_open(str(path), "pt")
        return self._open[path].get_tensor(name)


def average_into(model: torch.nn.Module, model_dirs: list) -> torch.nn.Module:
    """Load the uniform average of the checkpoints in `model_dirs` into `model`, in place."""
    if not model_dirs:
        raise MergeError("nothing to merge")
    readers = [_Reader(d) for d in model_dirs]
    names = set(readers[0].files)
    for r in readers[1:]:
        if set(r.files) != names:
            diff = sorted(names ^ set(r.files))[:3]
            raise MergeError(f"{r.model_dir} and {readers[0].model_dir} hold different tensors "
                             f"(e.g. {', '.join(diff)}); only models of one architecture can be merged")
    target = model.state_dict()
    unknown = sorted(names - set(target))
    if unknown:
        raise MergeError(f"{readers[0].model_dir}: tensor {unknown[0]} is not part of the evaluation model")
    with torch.no_grad():
        for name in sorted(names):
            acc = None
            for r in readers:
                t = r.get(name)
                if t.shape != target[name].shape:
                    raise MergeError(f"{r.model_dir}: tensor {name} has shape {tuple(t.shape)}, expected "
                                     f"{tuple(target[name].shape)}; models of different shapes cannot be merged")
                acc = t.to(torch.float32) if acc is None else acc.add_(t.to(torch.float32))
            target[name].copy_(acc.div_(len(readers)))
    return model
