"""The streamed builder: a merge loaded into a model one tensor at a time.

Memory stays at one target model plus one tensor per input model, whatever the number of
models merged: tensors are read one by one from the safetensors files.
"""

from __future__ import annotations

import torch

from shardmix.merging.method import Method
from shardmix.merging.method import method as merge_method
from shardmix.merging.reader import MergeError, Reader


def merge_into(model: torch.nn.Module, model_dirs: list, weights: list[float] | None = None,
               method: dict | None = None, seed_dir=None) -> torch.nn.Module:
    """Load the merge of the checkpoints in `model_dirs` into `model`, in place, one tensor at a
    time. `weights` default to uniform; `method` (a Method, its spec or config entry) to linear;
    methods relative to the seed need `seed_dir`."""
    if not model_dirs:
        raise MergeError("nothing to merge")
    weights = weights or [1 / len(model_dirs)] * len(model_dirs)
    if len(weights) != len(model_dirs):
        raise MergeError(f"{len(weights)} weights for {len(model_dirs)} models")
    method = merge_method(method or "linear")
    if method.needs_seed and seed_dir is None:
        raise MergeError(f"merge method {method.label} needs the seed model")
    readers = [Reader(d) for d in model_dirs]
    seed = Reader(seed_dir) if method.needs_seed else None
    try:
        _merge(model, readers, weights, method, seed)
    finally:
        for r in readers + ([seed] if seed else []):
            r.close()
    return model


def check_compatible(model: torch.nn.Module, readers: list[Reader]) -> dict:
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


def _merge(model: torch.nn.Module, readers: list[Reader], weights: list[float], method: Method,
           seed: Reader | None) -> None:
    target = check_compatible(model, readers + ([seed] if seed else []))
    with torch.no_grad():
        for name in sorted(readers[0].tensors):
            members = (r.get(name) for r in readers)  # one member tensor in memory at a time
            target[name].copy_(method.combine(weights, members, seed.get(name) if seed else None))
