"""Unit tests of shardmix.trust."""

from __future__ import annotations

import pandas as pd


def test_trust_warnings_name_weak_proxies_an_untrained_seed_and_shards_worse_than_it():
    from shardmix import trust

    agreement = pd.DataFrame([
        {"proxy": "merged:linear", "framing": "fixed", "budget_tokens": "4096", "eval_set": "ALL", "n_mixtures": 8,
         "pairwise_accuracy": 0.95, "pairwise_accuracy_lo": 0.9, "pairwise_accuracy_hi": 1.0},
        {"proxy": "naive", "framing": "fixed", "budget_tokens": "4096", "eval_set": "ALL", "n_mixtures": 8,
         "pairwise_accuracy": 0.6, "pairwise_accuracy_lo": 0.5, "pairwise_accuracy_hi": 0.7},
        {"proxy": "ensemble", "framing": "per_shard", "budget_tokens": "2048", "eval_set": "ALL", "n_mixtures": 3,
         "pairwise_accuracy": 0.9, "pairwise_accuracy_lo": 0.4, "pairwise_accuracy_hi": 1.0},
        {"proxy": "naive", "framing": "per_shard", "budget_tokens": "pooled", "eval_set": "ALL", "n_mixtures": 8,
         "pairwise_accuracy": 0.1, "pairwise_accuracy_lo": 0.0, "pairwise_accuracy_hi": 0.2}])
    found = trust.proxy_warnings(agreement)
    assert len(found) == 2 and "naive (fixed" in found[0] and "60%" in found[0] and "interval" in found[1]
    table = pd.DataFrame({"kind": ["seed", "seed", "shard", "shard"], "shards": ["", "", "a", "b"],
                          "eval_set": ["a", "b", "a", "b"], "ppl": [300.0, 20.0, 310.0, 19.0]})
    assert trust.shard_warnings(table) == ["shard model a is worse than the seed on its own held-out set: ppl 310.00 "
                                           "against 300.00"]
    assert "looks untrained" in trust.seed_warnings(table, vocab_size=512)[0]
    assert trust.seed_warnings(table, vocab_size=8192) == []
