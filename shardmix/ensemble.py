"""The ensemble proxy (MDE, Belenki et al. 2025): a mixture scored as the weighted average of its
member shard models' token probabilities, not of their parameters.

    ppl(w) = exp(-mean_t log sum_i w_i p_i(x_t | x_<t))

Each shard model's per-token NLL on every eval set is computed once and kept (one safetensors
file per shard and eval-set group, float32 in the order perplexity.evaluate reads the tokens), so
scoring any mixture of cached shards is arithmetic: k x tokens per set, no model runs. A file
holds one array per eval set of its group: it grows with the group's tokens (each set at most
evaluation.max_tokens); reading one array reads only its bytes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save

from shardmix import atomic, checksums


def write(path: str | Path, nll: dict[str, np.ndarray]) -> None:
    atomic.write_bytes(path, save({name: np.ascontiguousarray(a, np.float32) for name, a in nll.items()}))


def read(path: str | Path) -> dict[str, np.ndarray]:
    """A shard's cached NLLs, checked against its seal (safetensors: no code runs on load)."""
    checksums.check_file(path)
    return load_file(str(path))


def ppl(member_nll: list[np.ndarray], weights: list[float]) -> float:
    """Perplexity of the weighted average of the members' token probabilities."""
    nll = np.stack([np.asarray(a, np.float64) for a in member_nll])
    if len({a.shape for a in member_nll}) != 1:
        raise ValueError(f"members scored different numbers of tokens: {[len(a) for a in member_nll]}")
    log_w = np.log(np.asarray(weights, np.float64))[:, None]
    mixed = np.logaddexp.reduce(log_w - nll, axis=0)  # log sum_i w_i p_i per token
    return float(np.exp(-mixed.mean()))


class Cache:
    """Cached NLLs of shard models, one (shard, eval set) array read at a time from its sealed file;
    the last MAX_ARRAYS arrays are kept, so memory stays bounded whatever
    the number of shards and eval sets."""

    MAX_ARRAYS = 512

    def __init__(self, folder: str, groups: dict[str, list[str]]):
        self.folder = folder
        self.group_of = {s: g for g, sets in groups.items() for s in sets}
        self._arrays: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.calls, self.seconds = 0, 0.0  # mixtures scored and the time it took (reads included)

    def path(self, group: str, shard: str) -> str:
        return f"{self.folder}/{group}/{shard}.safetensors"

    def nll(self, shard: str, eval_set: str) -> np.ndarray:
        key = (shard, eval_set)
        if key in self._arrays:
            self._arrays.move_to_end(key)
            return self._arrays[key]
        path = self.path(self.group_of[eval_set], shard)
        checksums.check_file(path)  # hashed once per process (checksums remembers)
        with safe_open(path, framework="numpy") as f:
            array = f.get_tensor(eval_set)
        self._arrays[key] = array
        if len(self._arrays) > self.MAX_ARRAYS:
            self._arrays.popitem(last=False)
        return array

    def ppl(self, weights: dict[str, float], eval_set: str) -> float:
        start = time.perf_counter()
        out = ppl([self.nll(s, eval_set) for s in weights], list(weights.values()))
        self.calls += 1
        self.seconds += time.perf_counter() - start
        return out
