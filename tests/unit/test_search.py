"""Unit tests of shardmix.search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import saved_models

from shardmix import merging
from shardmix import model as models
from shardmix import naming, perplexity, search


def test_the_search_keeps_each_shard_under_its_repetition_cap():
    from shardmix import search

    limit = search.caps([1000, 1000, 8000], budget=4000, max_epochs=1.0)
    assert limit.tolist() == [0.25, 0.25, 1.0]
    with pytest.raises(search.SearchError, match="cannot supply"):
        search.caps([1000, 1000], budget=4000, max_epochs=1.0)
    w = search.capped(np.array([0.6, 0.3, 0.1]), limit)
    assert w.sum() == pytest.approx(1) and (w <= limit + 1e-9).all() and w.tolist() == pytest.approx([0.25, 0.25, 0.5])
    unchanged = search.capped(np.array([0.2, 0.2, 0.6]), limit)
    assert unchanged.tolist() == pytest.approx([0.2, 0.2, 0.6])
    # on tensors too, with gradients through the uncapped members
    logits = torch.tensor([2.0, 1.0, 0.0], requires_grad=True)
    t = search.capped(torch.softmax(logits, 0), limit)
    assert float(t.detach().sum()) == pytest.approx(1) and (t.detach().numpy() <= limit + 1e-6).all()
    t[2].backward()
    assert logits.grad is not None
    # the pick, after dropping small weights, stays under the cap
    name = search.pick(np.array([0.7, 0.25, 0.05]), ["a", "b", "c"], 0.1, limit)
    assert all(w <= cap + 1e-3 for (s, w), cap in zip(sorted(naming.weights(name).items()), limit))
    assert search.repetition("a@0.25+c@0.75", ["a", "b", "c"], [1000, 1000, 8000], 4000) == {"a": 1.0, "c": 0.375}


def test_gradient_search_finds_the_shard_the_target_prefers(tmp_path):
    """Two shard models: one is the seed itself, one the seed perturbed; a target whose data the
    seed fits better must push the weight towards the seed-like shard."""
    seed_dir, noisy, far = saved_models(tmp_path, 2)
    lm = models.skeleton(seed_dir)
    merging.merge_into(lm, [seed_dir])
    rng = np.random.default_rng(0)
    ids = rng.integers(0, lm.config.vocab_size, 16 * 17 * 8)
    sets = {"t": search.windows(perplexity.EvalSet(ids), 16)}
    objective = search.Objective({"t": 1.0}, {})
    pool = search.StackedShards([seed_dir, far], merging.method("linear"), None, torch.device("cpu"))
    weights = search.gradient_search(lm, pool, sets, objective, 25, 0.3, 4, 0, torch.device("cpu"), log=lambda m: None)
    assert weights.sum() == pytest.approx(1, abs=1e-6) and weights[0] > 0.6
    merged = search.exact_nll(lm, {"t": perplexity.EvalSet(ids)}, ["t"], 16, torch.device("cpu"))
    assert merged["t"] > 0
    assert search.pick(np.array([0.62, 0.35, 0.03]), ["a", "b", "c"], 0.05) == "a@0.639+b@0.361"
