"""Causal-LM training over flat token files: the seed model and every continued pretraining.

Data are disjoint windows of `context + 1` tokens. Each source contributes the same
number of windows (its token budget), in a shuffled order fixed by the training seed;
a source smaller than its budget is cycled with a new permutation per pass.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from shardmix.model import autocast


class TrainingError(ValueError):
    """Training data or settings that cannot give the configured run."""


def window_plan(source_lengths: list[int], windows_per_source: list[int], context: int,
                rng: np.random.Generator) -> np.ndarray:
    """Rows of (source index, start offset), shuffled across sources."""
    rows = []
    for i, (length, need) in enumerate(zip(source_lengths, windows_per_source)):
        available = (length - 1) // context
        if available < 1:
            raise TrainingError(f"source {i} has {length} tokens, fewer than one window of {context + 1}")
        passes = [rng.permutation(available) for _ in range(-(-need // available))]
        starts = np.concatenate(passes)[:need] * context
        rows.append(np.stack([np.full(need, i), starts], axis=1))
    plan = np.concatenate(rows)
    return plan[rng.permutation(len(plan))]


def lr_at(step: int, total: int, cfg: dict) -> float:
    peak = cfg["lr"]
    if step < cfg["warmup_steps"]:
        return peak * (step + 1) / cfg["warmup_steps"]
    if cfg["schedule"] == "constant":
        return peak
    progress = (step - cfg["warmup_steps"]) / max(1, total - cfg["warmup_steps"])
    floor = peak * cfg["min_lr_ratio"]
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def train(model, sources: list[np.ndarray], tokens_per_source: list[int], cfg: dict, context: int,
          device: torch.device, label: str = "train") -> dict:
    """Train `model` in place with a fresh AdamW; return the training log."""
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    windows = [max(1, -(-t // context)) for t in tokens_per_source]
    plan = window_plan([len(s) for s in sources], windows, context, rng)
    batch = cfg["batch_size"]
    steps = -(-len(plan) // batch)
    model.to(device).train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg["lr"], betas=(0.9, 0.95), fused=device.type == "cuda")
    log = {"label": label, "steps": steps, "batch_size": batch, "context": context,
           "loss": [], "lr": [], "tokens_seen": []}
    start, seen = time.perf_counter(), 0
    for step in range(steps):
        rows = plan[step * batch:(step + 1) * batch]
        x, y = _batch(sources, rows, context, device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, cfg)
        with autocast(device):
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        seen += y.numel()
        log["loss"].append(round(loss.item(), 5))
        log["lr"].append(opt.param_groups[0]["lr"])
        log["tokens_seen"].append(seen)
        if step % cfg["log_every"] == 0 or step == steps - 1:
            elapsed = time.perf_counter() - start
            print(f"[{label}] step {step + 1}/{steps} loss {loss.item():.4f} lr {log['lr'][-1]:.2e} "
                  f"tokens {seen} ({seen / max(elapsed, 1e-9):.0f} tokens/s)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    log.update(tokens=seen, seconds=round(seconds, 3), tokens_per_second=round(seen / max(seconds, 1e-9), 1),
               device=str(device), final_loss=log["loss"][-1])
    return log


def _batch(sources, rows, context, device):
    data = np.stack([np.asarray(sources[s][o:o + context + 1], dtype=np.int64) for s, o in rows])
    t = torch.from_numpy(data).to(device)
    return t[:, :-1], t[:, 1:]
