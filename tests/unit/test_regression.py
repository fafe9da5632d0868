"""Unit tests of shardmix.regression."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shardmix import naming


def _regression_pairs(n=10, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    shards = ["a", "b", "c"]
    rows = []
    for i in range(n):
        w = rng.dirichlet(np.ones(3))
        mixture = naming.mixture_name(dict(zip(shards, w)))
        budget = float(rng.choice([4096, 8192, 12288]))
        merged = rng.uniform(20, 60)
        true = math.exp(0.3 + 0.9 * math.log(merged) - 0.15 * math.log(budget) + rng.normal(0, noise))
        rows.append({"eval_set": "s", "mixture": mixture, "budget_tokens": budget, "merged:linear": merged,
                     "true": true})
    return pd.DataFrame(rows), shards


def test_the_regression_is_judged_out_of_sample():
    from shardmix import regression

    pairs, shards = _regression_pairs()
    loo = regression.loo_column(pairs, "merged_budget", "merged:linear", shards)
    # an exact log-linear relation, learnt from the others: in order, and close up to the ridge's shrinkage
    from shardmix import decision

    assert decision.pairwise_accuracy(pairs["true"].to_numpy(), loo.to_numpy()) >= 0.95  # a near tie may swap
    assert np.mean(np.abs(np.log(loo / pairs["true"]))) < 0.02
    # out of sample: a mixture off the relation is predicted from the rest, not from itself
    off = pairs.copy()
    off.loc[3, "true"] *= 2.0
    moved = regression.loo_column(off, "merged_budget", "merged:linear", shards)
    assert moved[3] == pytest.approx(loo[3], rel=0.2) and moved[3] < 0.7 * off.loc[3, "true"]
    # the weights alone carry nothing of this relation: that family predicts worse
    weights_only = regression.loo_column(pairs, "weights", "merged:linear", shards)
    assert np.mean(np.abs(np.log(weights_only / pairs["true"]))) > 5 * np.mean(np.abs(np.log(loo / pairs["true"])))
    # too few to fit and check: nothing predicted
    assert regression.loo_column(pairs.head(4), "merged_budget", "merged:linear", shards).isna().all()
