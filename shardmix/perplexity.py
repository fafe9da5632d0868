"""Token-level perplexity and bits per byte over disjoint context windows.

An eval set is a token array, optionally made of independent segments of `segment` tokens
joined end to end (a shard's held-out chunks, drawn at random from its stream). Windows never
cross a join: each segment's first token is never predicted (nothing before it in the segment
precedes it in the text), and every other token is predicted exactly once, from the tokens
before it in its window, a window being at most `context` predictions long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shardmix import tokens
from shardmix.model import autocast


@dataclass
class EvalSet:
    ids: np.ndarray
    segment: int | None = None  # tokens per independent segment; None: one stream


def load_set(spec: dict, max_tokens: int | None) -> EvalSet:
    """An eval set from its spec, cut to `max_tokens` (0 or None: all): {"path", "segment"}, or
    a domain's held-out set {"paths", "segment"}, which takes an equal share of whole segments
    from each file (a cut from the front would score the domain's first units only)."""
    if "paths" not in spec:
        return EvalSet(tokens.load(spec["path"])[:max_tokens or None], spec.get("segment"))
    segment = spec.get("segment") or 1
    # whole segments only, so no segment of one file runs into the next file's
    parts = [p[:len(p) // segment * segment] for p in map(tokens.load, spec["paths"])]
    if max_tokens:
        share = -(-max_tokens // len(parts))
        parts = [p[:max(segment, -(-share // segment) * segment)] for p in parts]
    ids = np.concatenate(parts)
    return EvalSet(ids[:max_tokens or None], spec.get("segment"))


def windows(n_tokens: int, context: int, segment: int | None = None) -> list[tuple[int, int]]:
    """(start, length) of each window: it reads ids[start:start + length] and predicts
    ids[start + 1:start + length + 1]."""
    segment = segment or n_tokens
    out = []
    for begin in range(0, n_tokens, segment):
        end = min(begin + segment, n_tokens)
        out += [(s, min(context, end - 1 - s)) for s in range(begin, end - 1, context)]
    return out


def full_length(context: int, segment: int | None) -> int:
    """The length of the windows that fill a segment (all but a segment's last)."""
    return min(context, segment - 1) if segment else context


def _batches(ids: np.ndarray, context: int, segment: int | None, batch_windows: int):
    """(inputs, targets) of the windows, those of one length batched together, longest first:
    every scoring function reads the tokens in this one order."""
    by_length: dict[int, list[int]] = {}
    for start, length in windows(len(ids), context, segment):
        by_length.setdefault(length, []).append(start)
    for length, starts in sorted(by_length.items(), reverse=True):
        for i in range(0, len(starts), batch_windows):
            group = starts[i:i + batch_windows]
            yield np.stack([ids[s:s + length] for s in group]), np.stack([ids[s + 1:s + length + 1] for s in group])


@torch.no_grad()
def evaluate(model, eval_set: EvalSet, token_bytes: np.ndarray, context: int, batch_windows: int,
             device: torch.device) -> dict:
    ids = np.asarray(eval_set.ids, dtype=np.int64)
    model.eval()
    nll, n_tokens, n_bytes = 0.0, 0, 0
    for x, y in _batches(ids, context, eval_set.segment, batch_windows):
        with autocast(device):
            logits = model(input_ids=torch.from_numpy(x).to(device)).logits
        nll += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                               torch.from_numpy(y).to(device).reshape(-1), reduction="sum").item()
        n_tokens += y.size
        n_bytes += int(token_bytes[y].sum())
    return {"tokens": n_tokens, "bytes": n_bytes, "nll": nll,
            "ppl": math.exp(nll / n_tokens), "bpb": nll / (math.log(2) * max(n_bytes, 1))}


@torch.no_grad()
def token_nll(model, eval_set: EvalSet, context: int, batch_windows: int, device: torch.device) -> np.ndarray:
    """The NLL of every predicted token of the set (float32), in the order `evaluate` reads them:
    the same order for every model, so two models' arrays align token by token."""
    ids = np.asarray(eval_set.ids, dtype=np.int64)
    model.eval()
    out = []
    for x, y in _batches(ids, context, eval_set.segment, batch_windows):
        with autocast(device):
            logits = model(input_ids=torch.from_numpy(x).to(device)).logits
        out.append(F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                   torch.from_numpy(y).to(device).reshape(-1), reduction="none").cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
