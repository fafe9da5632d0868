"""Choose candidate units toward a target: GOT-D and two baselines.

- `gotd` (Kang et al., ICLR 2024): solve entropic optimal transport between the candidates
  and the target, and rank each candidate by its calibrated gradient, g_i minus the mean of
  the other candidates' dual potentials: the most negative are those whose extra mass most
  reduces the OT distance to the target. A pool larger than `chunk` is cut into seeded random
  chunks, each solved against the whole target (memory O(chunk x target)); the calibration
  removes each chunk's free constant, so scores compare across chunks.
- `nearest`: cosine similarity of each candidate to the target's mean embedding.
- `random`: a seeded shuffle.

OT runs with POT (Python Optimal Transport) on torch tensors, so on the GPU where there is
one. Embeddings are L2-normalised; the cost is their squared distance (2 - 2 cos), and `reg`
is relative to the mean cost between pool and target, so one setting suits any encoder.
"""

from __future__ import annotations

import numpy as np
import torch

METHODS = ("gotd", "nearest", "random")


def _generator(seed: int, *parts) -> np.random.Generator:
    import hashlib

    key = hashlib.blake2b(":".join(map(str, (seed, *parts))).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(key, "big"))


def sample_rows(x: np.ndarray, limit: int, seed: int, label: str) -> np.ndarray:
    if len(x) <= limit:
        return x
    return x[np.sort(_generator(seed, label).choice(len(x), size=limit, replace=False))]


def _cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (2 - 2 * x @ y.T).clamp_(min=0)


def cost_scale(pool: np.ndarray, target: np.ndarray, seed: int) -> float:
    """Mean cost between pool and target (on samples): the unit `reg` is measured in."""
    x = torch.as_tensor(sample_rows(pool, 4096, seed, "scale-pool"), dtype=torch.float64)
    y = torch.as_tensor(sample_rows(target, 4096, seed, "scale-target"), dtype=torch.float64)
    return float(_cost(x, y).mean())


def _potentials(x: torch.Tensor, y: torch.Tensor, reg: float, max_iter: int) -> tuple[np.ndarray, dict]:
    """Dual potential of each row of x for the entropic OT from uniform x to uniform y."""
    import ot

    a = torch.full((len(x),), 1 / len(x), dtype=x.dtype, device=x.device)
    b = torch.full((len(y),), 1 / len(y), dtype=x.dtype, device=x.device)
    cost = _cost(x, y)
    _, log = ot.sinkhorn(a, b, cost, reg, method="sinkhorn", numItermax=max_iter, stopThr=1e-7, log=True,
                         warn=False)
    f = reg * torch.log(log["u"])
    if not torch.isfinite(f).all():  # scaling under- or overflowed: the log-domain solver is slower but safe
        _, log = ot.sinkhorn(a, b, cost, reg, method="sinkhorn_log", numItermax=max_iter, stopThr=1e-7, log=True,
                             warn=False)
        f = reg * log["log_u"]
    return f.cpu().numpy(), {"iterations": int(log["niter"]), "marginal_error": float(log["err"][-1])
                             if len(log["err"]) else None}


def gotd_scores(pool: np.ndarray, target: np.ndarray, ot_cfg: dict, seed: int, scale: float,
                device: torch.device, log=None) -> tuple[np.ndarray, dict]:
    """Calibrated gradient of the OT distance with respect to each candidate's mass (lower: pick first)."""
    reg = ot_cfg["reg"] * scale
    dtype = torch.float32 if device.type == "cuda" else torch.float64
    y = torch.as_tensor(sample_rows(target, ot_cfg["max_target"], seed, "target"), dtype=dtype, device=device)
    order = _generator(seed, "chunks").permutation(len(pool))
    n_chunks = -(-len(pool) // ot_cfg["chunk"])
    scores = np.zeros(len(pool))
    iterations = []
    for i, rows in enumerate(np.array_split(order, n_chunks)):
        rows = np.sort(rows)
        x = torch.as_tensor(pool[rows], dtype=dtype, device=device)
        f, info = _potentials(x, y, reg, ot_cfg["max_iter"])
        n = len(f)
        # g_i - mean of the others' = n / (n - 1) * (g_i - mean(g))
        scores[rows] = (f - f.mean()) * n / max(n - 1, 1)
        iterations.append(info["iterations"])
        if log:
            log(f"OT chunk {i + 1}/{n_chunks}: {n} candidates x {len(y)} target pieces, "
                f"{info['iterations']} iterations, marginal error {info['marginal_error']}")
    return scores, {"reg": ot_cfg["reg"], "reg_absolute": reg, "chunks": n_chunks, "target_pieces": len(y),
                    "iterations": iterations}


def nearest_scores(pool: np.ndarray, target: np.ndarray) -> np.ndarray:
    centre = target.mean(0)
    centre = centre / max(np.linalg.norm(centre), 1e-12)
    return -(pool @ centre)


def random_scores(n: int, seed: int, label: str) -> np.ndarray:
    return _generator(seed, "random", label).random(n)


def pick(scores: np.ndarray, eligible: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` eligible candidates with the lowest scores, best first."""
    idx = np.flatnonzero(eligible)
    return idx[np.argsort(scores[idx], kind="stable")[:count]]


def ot_distance(x: np.ndarray, y: np.ndarray, ot_cfg: dict, seed: int, scale: float, device: torch.device) -> float:
    """Transport cost <P, C> of the entropic plan between two sets of embeddings (samples of
    at most max_target each), in the cost's own units (squared distance of unit vectors)."""
    import ot

    dtype = torch.float32 if device.type == "cuda" else torch.float64
    xs = torch.as_tensor(sample_rows(x, ot_cfg["max_target"], seed, "distance-x"), dtype=dtype, device=device)
    ys = torch.as_tensor(sample_rows(y, ot_cfg["max_target"], seed, "distance-y"), dtype=dtype, device=device)
    a = torch.full((len(xs),), 1 / len(xs), dtype=dtype, device=device)
    b = torch.full((len(ys),), 1 / len(ys), dtype=dtype, device=device)
    cost = _cost(xs, ys)
    plan = ot.sinkhorn(a, b, cost, ot_cfg["reg"] * scale, method="sinkhorn_log", numItermax=ot_cfg["max_iter"],
                       stopThr=1e-7, warn=False)
    return float((plan * cost).sum())


def select(method: str, pool: np.ndarray, target: np.ndarray, eligible: np.ndarray, count: int, ot_cfg: dict,
           seed: int, label: str, device: torch.device, log=None) -> tuple[np.ndarray, dict]:
    """The chosen candidate indices (best first) and what the method did."""
    candidates = pool[eligible]  # one copy: at a million candidates it is hundreds of MiB
    scale = cost_scale(candidates, target, seed)
    info: dict = {"cost_scale": scale}
    if method == "gotd":
        scores, ot_info = gotd_scores(candidates, target, ot_cfg, seed, scale, device, log)
        full = np.full(len(pool), np.inf)
        full[eligible] = scores
        scores = full
        info.update(ot_info)
    elif method == "nearest":
        scores = nearest_scores(pool, target)
    elif method == "random":
        scores = random_scores(len(pool), seed, label)
    else:
        raise ValueError(f"unknown selection method {method!r} (known: {', '.join(METHODS)})")
    return pick(scores, eligible, count), info
