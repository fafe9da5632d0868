"""Mixture search: the weights over the shards that minimise a target's predicted perplexity.

A target is a weighted set of eval sets; its objective is the weighted mean over them of the
predicted log perplexity (the calibrated proxy on sets it ranks, else the merged model's log
perplexity). The merged model is linear in the weights, so with the shard models resident in
memory the objective is differentiated with respect to softmax-parameterised weights through
the merged parameters (minibatches of eval windows per step). Where the models do not fit the
memory budget, Dirichlet samples plus pairwise local moves, each a streamed merge, stand in.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from shardmix import merging, naming, perplexity
from shardmix.model import autocast


class Objective:
    """A target's predicted log ppl from each set's mean NLL and the weights' n_eff."""

    def __init__(self, target: dict[str, float], calibration: dict[str, dict]):
        self.target = target
        self.calibration = calibration  # set -> {"a", "b", "c"} where that set is ranked by calibration

    def predicted_log(self, nll: dict, n_eff) -> torch.Tensor | float:
        total = 0.0
        for name, weight in self.target.items():
            cal = self.calibration.get(name)
            term = nll[name] if cal is None else cal["a"] + cal["b"] * nll[name] + cal["c"] * _log(n_eff)
            total = total + weight * term
        return total

    def merged_log(self, nll: dict) -> float:
        return float(sum(weight * float(nll[name]) for name, weight in self.target.items()))


def _log(x):
    return torch.log(x) if isinstance(x, torch.Tensor) else math.log(x)


def windows(eval_set: perplexity.EvalSet, context: int) -> np.ndarray:
    """The eval set's windows that fill a segment, as evaluation reads them, with each window's
    next token appended (rows of length + 1 tokens)."""
    length = perplexity.full_length(context, eval_set.segment)
    starts = [s for s, n in perplexity.windows(len(eval_set.ids), context, eval_set.segment) if n == length]
    return np.stack([np.asarray(eval_set.ids[s:s + length + 1], dtype=np.int64) for s in starts])


def _nll(model, params, batch: torch.Tensor, device) -> torch.Tensor:
    with autocast(device):
        logits = functional_call(model, params, (batch[:, :-1],)).logits if params is not None \
            else model(input_ids=batch[:, :-1]).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


class StackedShards:
    """Every shard model's tensors stacked in memory: the merge is a weighted sum, differentiable."""

    def __init__(self, shard_dirs: list, method, seed_dir, device):
        method = merging.method(method)
        readers = [merging.Reader(d) for d in shard_dirs]
        seed = merging.Reader(seed_dir) if method.needs_seed else None
        try:
            self.stacked = {name: torch.stack([r.get(name).to(torch.float32) for r in readers]).to(device)
                            for name in readers[0].tensors}
            self.seed = {name: seed.get(name).to(torch.float32).to(device) for name in seed.tensors} if seed else {}
        finally:
            for r in readers + ([seed] if seed else []):
                r.close()
        self.method = method

    def params(self, weights: torch.Tensor) -> dict:
        out = {}
        for name, stack in self.stacked.items():
            out[name] = self.method.combine(list(weights.unbind(0)), list(stack.unbind(0)), self.seed.get(name))
        return out


class SearchError(ValueError):
    """A search that cannot be done as configured (the shards cannot supply the budget)."""


def caps(train_tokens: list[int], budget: int, max_epochs: float) -> np.ndarray:
    """The most weight each shard can have at `budget` tokens: max_epochs passes over its data."""
    out = np.minimum(1.0, max_epochs * np.asarray(train_tokens, float) / budget)
    if out.sum() < 1 - 1e-9:
        raise SearchError(f"the shards hold {sum(train_tokens)} training tokens: at search.max_epochs = {max_epochs} "
                          f"they cannot supply search.budget_tokens = {budget}; lower the budget or allow more epochs")
    return out


def capped(weights, limit):
    """Weights (summing to 1) moved onto the simplex under `limit`: capped members at their
    limit, the rest scaled up in proportion. Works on numpy arrays and (differentiably) on tensors."""
    is_tensor = isinstance(weights, torch.Tensor)
    limit = torch.as_tensor(limit, dtype=weights.dtype, device=weights.device) if is_tensor else np.asarray(limit)
    at_cap = weights > limit
    for _ in range(len(weights)):
        free = ~at_cap
        room = 1 - (limit * at_cap).sum()
        scale = room / (weights * free).sum()
        out = limit * at_cap + weights * free * scale
        grown = (out > limit + 1e-12) & free
        if not bool(grown.any()):
            return out
        at_cap = at_cap | grown
    return out


def repetition(mixture: str, shards: list[str], train_tokens: list[int], budget: int) -> dict[str, float]:
    """Passes over each member's training tokens that training the mixture on `budget` tokens makes."""
    size = dict(zip(shards, train_tokens))
    return {s: w * budget / size[s] for s, w in naming.weights(mixture).items()}


def stacked_bytes(shard_dirs: list) -> int:
    return merging.stored_bytes(shard_dirs) * 2  # fp32 of bf16 at worst


def gradient_search(model, stacked: StackedShards, sets: dict[str, np.ndarray], objective: Objective, steps: int,
                    lr: float, windows_per_step: int, seed: int, device, limit=None, log=print) -> np.ndarray:
    """Adam on the softmax logits of the weights, from uniform, on minibatches of each target set;
    weights over `limit` (each shard's repetition cap) are moved under it at every step."""
    n = next(iter(stacked.stacked.values())).shape[0]
    logits = torch.zeros(n, device=device, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=lr)
    rng = np.random.default_rng(seed)
    model.eval()
    def weights():
        w = torch.softmax(logits, 0)
        return w if limit is None else capped(w, limit)

    for step in range(steps):
        w = weights()
        params = stacked.params(w)
        nll = {}
        for name in objective.target:
            rows = rng.choice(len(sets[name]), size=min(windows_per_step, len(sets[name])), replace=False)
            nll[name] = _nll(model, params, torch.from_numpy(sets[name][rows]).to(device), device)
        loss = objective.predicted_log(nll, 1 / torch.sum(w ** 2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            log(f"step {step + 1}/{steps}: predicted log ppl {loss.item():.4f} weights "
                + " ".join(f"{x:.3f}" for x in w.detach().cpu().tolist()))
    with torch.no_grad():
        return weights().detach().cpu().numpy()


def exact_nll(model, sets: dict[str, perplexity.EvalSet], names, context: int, device) -> dict[str, float]:
    """Mean NLL of each named set with the model's current weights, exactly as the scores are
    computed (shardmix.perplexity), so a pick's merged ppl compares with scores.csv."""
    out = {}
    for name in names:
        no_bytes = np.ones(int(np.max(sets[name].ids)) + 1)
        score = perplexity.evaluate(model, sets[name], no_bytes, context, 16, device)
        out[name] = score["nll"] / score["tokens"]
    return out


def sampling_search(model, shard_dirs: list, shards: list[str], method: dict, seed_dir, sets: dict, context: int,
                    objective: Objective, samples: int, seed: int, device, limit=None, log=print) -> np.ndarray:
    """Fallback without the shard models in memory: Dirichlet samples, then pairwise moves of weight
    (0.2, 0.1, 0.05) from one shard to another while the objective improves; every point is a
    streamed merge scored on the target sets."""
    def score(w):
        w = w if limit is None else capped(w, limit)
        merging.merge_into(model, shard_dirs, list(w), method, seed_dir)
        return objective.predicted_log(exact_nll(model, sets, objective.target, context, device),
                                       1 / float(np.sum(w ** 2)))

    rng = np.random.default_rng(seed)
    n = len(shards)
    points = [np.full(n, 1 / n), *rng.dirichlet(np.ones(n), size=samples)]
    best_w, best = None, math.inf
    for w in points:
        value = score(w)
        if value < best:
            best_w, best = w, value
    log(f"{len(points)} samples: best predicted log ppl {best:.4f}")
    for delta in (0.2, 0.1, 0.05):
        improved = True
        while improved:
            improved = False
            for i in range(n):
                for j in range(n):
                    if i == j or best_w[j] < delta:
                        continue
                    w = best_w.copy()
                    w[i] += delta
                    w[j] -= delta
                    value = score(w)
                    if value < best - 1e-6:
                        best_w, best, improved = w, value, True
        log(f"moves of {delta}: best predicted log ppl {best:.4f}")
    return best_w if limit is None else capped(best_w, limit)


def pick(weights: np.ndarray, shards: list[str], min_weight: float, limit=None) -> str:
    """The search's weights as a canonical mixture: weights under `min_weight` dropped, the rest
    renormalised (thousandths) and kept under `limit`, unless the kept shards cannot supply it."""
    kept = {s: float(w) for s, w in zip(shards, weights) if w >= min_weight}
    if not kept:
        kept = {shards[int(np.argmax(weights))]: 1.0}
    if limit is not None:
        names = list(kept)
        room = np.array([limit[shards.index(s)] for s in names])
        w = np.array([kept[s] for s in names]) / sum(kept.values())
        if room.sum() < 1:  # the dropped shards were needed to stay under the cap: keep them all
            names, room, w = list(shards), np.asarray(limit), np.asarray(weights, float) / np.sum(weights)
        kept = dict(zip(names, capped(w, room).tolist()))
    return naming.mixture_name(kept)


def subset_objectives(scores, method: str, objective: Objective, shards: list[str]) -> dict[str, tuple[float, float]]:
    """Predicted and merged target ppl of every scored uniform subset of `shards` (the search's;
    a selected shard's mixtures are not among them). Shards included: a shard's own model is its
    true model, so its measured ppl stands on every set."""
    rows = scores[((scores["kind"] == "merged") & (scores["method"] == method)) | (scores["kind"] == "shard")]
    rows = rows[~rows["model"].str.contains(naming.AT, regex=False)]
    out = {}
    for model_id, g in rows.groupby("model"):
        ppl = g.set_index("eval_set")["ppl"]
        if not set(objective.target) <= set(ppl.index):
            continue
        nll = {s: math.log(ppl[s]) for s in objective.target}
        mixture = model_id.split("/", 1)[1]
        if not set(naming.members(mixture)) <= set(shards):
            continue
        k = len(naming.members(mixture))
        predicted = objective.merged_log(nll) if k == 1 else objective.predicted_log(nll, float(k))
        out[mixture] = (math.exp(predicted), math.exp(objective.merged_log(nll)))
    return out


def weights_plot(best, shards: list[str], out: str) -> None:
    """One stacked bar of chosen weights per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.7 * len(best) + 1.6))
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(shards), 2)))
    for row, (_, r) in enumerate(best.iterrows()):
        weights = naming.weights(r["weights"])
        left = 0.0
        for color, shard in zip(colors, shards):
            w = weights.get(shard, 0.0)
            ax.barh(row, w, left=left, color=color, label=shard if row == 0 else None, edgecolor="white")
            if w >= 0.08:
                ax.text(left + w / 2, row, f"{w:.2f}", ha="center", va="center", fontsize=7)
            left += w
    ax.set_yticks(range(len(best)), [f"{t}\n(pred. {p:.1f})" for t, p in zip(best["target"], best["predicted_ppl"])],
                  fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("weight in the mixture the search chose")
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.set_title("Searched mixture per target (predicted ppl in brackets)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
