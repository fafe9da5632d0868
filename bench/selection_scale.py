"""Selection at scale: GOT-D, nearest and random over synthetic candidate embeddings of the demo
seed's width (128), in a process of their own so the peak RSS is the selection's.

Candidates and target are unit vectors around 64 random centres; the target uses 8 of them, so
the optimal transport has real structure to find. The target is `max_target` pieces, the
selection 1 % of the pool.
"""

from __future__ import annotations

import time

import numpy as np

from bench import kit

WIDTH = 128


def _points(rng, centres, n):
    x = centres[rng.integers(0, len(centres), size=n)] + 0.5 * rng.normal(size=(n, centres.shape[1])) / np.sqrt(WIDTH)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def select(n: int, chunk: int, max_target: int) -> dict:
    import torch

    from shardmix import selection

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(64, WIDTH)) / np.sqrt(WIDTH)
    pool = _points(rng, centres, n)
    target = _points(rng, centres[:8], max_target)
    eligible = np.ones(n, dtype=bool)
    ot_cfg = {"reg": 0.05, "chunk": chunk, "max_target": max_target, "max_iter": 2000}
    out = {"candidates": n, "width": WIDTH, "target_pieces": max_target, "chunk": chunk, "selected": n // 100}
    for method in selection.METHODS:
        start = time.perf_counter()
        _, info = selection.select(method, pool, target, eligible, n // 100, ot_cfg, 0, "bench", torch.device("cpu"))
        out[f"{method}_seconds"] = round(time.perf_counter() - start, 2)
        if method == "gotd":
            out["gotd_chunks"] = info["chunks"]
            out["gotd_mean_iterations"] = float(np.mean(info["iterations"]))
    return out


if __name__ == "__main__":
    kit.serve({"select": select})
