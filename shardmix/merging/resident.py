"""The resident builder: a shard pool: the shard models of an evaluation batch held in memory (on the
evaluation device), and each mixture built from them by updating a running weighted sum.

Consecutive mixtures of a batch share most members, so moving from one to the next adds or
subtracts only the members whose coefficient changes, instead of re-reading k checkpoints.
The sum is kept in float64, so thousands of updates leave no drift a perplexity could show.
Methods that are not an affine function of the weighted average and the seed are built from
the resident tensors from scratch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from shardmix.merging.method import method as merge_method
from shardmix.merging.reader import Reader, stored_bytes
from shardmix.merging.streamed import check_compatible


def resident_bytes(dirs: list, model: torch.nn.Module) -> int:
    """Memory the pool needs: every checkpoint as stored, plus the float64 running sum."""
    return stored_bytes(dirs) + 8 * sum(p.numel() for p in model.state_dict().values())


def coefficients(weights: dict) -> tuple[dict, float]:
    """(member -> coefficient in the running sum, scale) with merge = scale * sum: a uniform
    mixture sums its members unscaled (so adding a member changes one coefficient), a weighted
    one sums them by weight."""
    if len(set(weights.values())) == 1:
        return dict.fromkeys(weights, 1.0), 1 / len(weights)
    return dict(weights), 1.0


def update_order(mixtures: list[dict]) -> list[int]:
    """An order of the mixtures (coefficient maps) in which consecutive ones differ in few
    coefficients: greedily the nearest next one, from the smallest mixture."""
    def changes(a, b):
        return sum(a.get(k, 0.0) != b.get(k, 0.0) for k in a.keys() | b.keys())

    left = set(range(len(mixtures)))
    order = []
    current: dict = {}
    while left:
        nxt = min(left, key=lambda i: (changes(current, mixtures[i]), i))
        order.append(nxt)
        left.remove(nxt)
        current = mixtures[nxt]
    return order


class ResidentPool:
    """Checkpoints held in memory by directory; `build` loads a mixture of them into a model."""

    def __init__(self, model: torch.nn.Module, dirs: list, device: torch.device):
        readers = [Reader(d) for d in dirs]
        try:
            self.target = check_compatible(model, readers)
            self.tensors = {str(r.model_dir): {name: r.get(name).to(device) for name in r.tensors} for r in readers}
        finally:
            for r in readers:
                r.close()
        self.names = sorted(readers[0].tensors)
        self.sum = {name: torch.zeros_like(self.target[name], dtype=torch.float64, device=device)
                    for name in self.names}
        self.current: dict[str, float] = {}
        self.updates = 0  # member tensors added to or subtracted from the sum so far

    def _move_to(self, coefs: dict[str, float]) -> None:
        with torch.no_grad():
            for d in self.current.keys() | coefs.keys():
                delta = coefs.get(d, 0.0) - self.current.get(d, 0.0)
                if delta:
                    for name in self.names:
                        self.sum[name].add_(self.tensors[d][name], alpha=delta)
                    self.updates += 1
        self.current = {d: c for d, c in coefs.items() if c}

    def build(self, dirs: list, weights: list[float], method, seed_dir=None) -> None:
        """Load the merge of `dirs` (weights, method as streamed.merge_into) into the model."""
        method = merge_method(method)
        keys = [str(Path(d)) for d in dirs]
        seed = self.tensors[str(Path(seed_dir))] if method.needs_seed else None
        affine = method.affine()
        with torch.no_grad():
            if affine is None:
                for name in self.names:
                    members = (self.tensors[k][name] for k in keys)
                    self.target[name].copy_(method.combine(weights, members, seed[name] if seed else None))
                return
            coefs, scale = coefficients(dict(zip(keys, weights)))
            self._move_to(coefs)
            a, b = affine
            for name in self.names:
                target = self.target[name]
                if target.dtype == torch.float32:  # in place: no temporary of the model's size
                    target.copy_(self.sum[name]).mul_(a * scale)
                    if b:
                        target.add_(seed[name], alpha=b)
                else:  # a low-precision model: round once, as the streamed merge does
                    target.copy_(self.sum[name] * (a * scale) + (b * seed[name].double() if b else 0))
