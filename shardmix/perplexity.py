"""Token-level perplexity and bits per byte over disjoint context windows."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from shardmix.model import autocast


@torch.no_grad()
def evaluate(model, ids: np.ndarray, token_bytes: np.ndarray, context: int, batch_windows: int,
             device: torch.device) -> dict:
    """Every token after the first is predicted once, from the tokens before it in its window."""
    ids = np.asarray(ids, dtype=np.int64)
    starts = list(range(0, len(ids) - 1, context))
    model.eval()
    nll, n_tokens, n_bytes = 0.0, 0, 0
    # the last window may be short; batch only windows of full length together
    full = [s for s in starts if s + context + 1 <= len(ids)]
    groups = [full[i:i + batch_windows] for i in range(0, len(full), batch_windows)]
    if len(starts) > len(full):
        groups.append(starts[len(full):])
    for group in groups:
        length = min(context, len(ids) - 1 - group[0])
        x = torch.from_numpy(np.stack([ids[s:s + length] for s in group])).to(device)
        y = torch.from_numpy(np.stack([ids[s + 1:s + length + 1] for s in group])).to(device)
        with autocast(device):
            logits = model(input_ids=x).logits
        nll += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                               reduction="sum").item()
        n_tokens += y.numel()
        n_bytes += int(token_bytes[y.cpu().numpy()].sum())
    return {"tokens": n_tokens, "bytes": n_bytes, "nll": nll,
            "ppl": math.exp(nll / n_tokens), "bpb": nll / (math.log(2) * max(n_bytes, 1))}
