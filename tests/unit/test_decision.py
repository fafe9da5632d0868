"""Unit tests of shardmix.decision."""

from __future__ import annotations

import math

import numpy as np
import pytest


def test_decision_metrics_on_cases_with_known_answers():
    from shardmix import decision

    true = np.array([10.0, 11.0, 12.0, 13.0])
    assert decision.regret(true, np.array([3.0, 1.0, 2.0, 4.0])) == pytest.approx(0.1)
    assert decision.top1(true, np.array([3.0, 1.0, 2.0, 4.0])) == 0.0
    assert decision.top1(true, np.array([1.0, 2.0, 3.0, 0.5])) == 0.0
    assert decision.top1(true, np.array([1.0, 2.0, 3.0, 4.0])) == 1.0
    # one swapped pair of six
    assert decision.pairwise_accuracy(true, np.array([1.0, 3.0, 2.0, 4.0])) == pytest.approx(5 / 6)
    assert decision.pairwise_accuracy(true, -true) == 0.0
    assert decision.pairwise_accuracy(true, np.array([1.0, 1.0, 2.0, 3.0])) == pytest.approx(5.5 / 6)  # a tie: half
    assert math.isnan(decision.pairwise_accuracy(np.ones(3), np.arange(3.0)))  # no pair to order
    # the best quarter of 12 mixtures is 3: only their order counts
    true12 = np.arange(1.0, 13.0)
    proxy = true12.copy()
    proxy[3:] = proxy[3:][::-1]  # the rest reversed: no effect
    assert decision.top_quarter_spearman(true12, proxy) == pytest.approx(1.0)
    proxy[:3] = [3.0, 2.0, 1.0]
    assert decision.top_quarter_spearman(true12, proxy) == pytest.approx(-1.0)
    assert math.isnan(decision.top_quarter_spearman(true[:2], true[:2]))
    # a perfect proxy: every resample agrees; a poor one on 4 mixtures: a wide interval
    sets = np.stack([true, true * 1.1])
    tight = decision.bootstrap(sets, sets * 0.9)
    assert tight["ALL"]["pairwise_accuracy"] == (1.0, 1.0) and tight["ALL"]["regret"] == (0.0, 0.0)
    wide = decision.bootstrap(sets, np.stack([[1.0, 3.0, 2.0, 0.5]] * 2))
    lo, hi = wide["ALL"]["pairwise_accuracy"]
    assert hi - lo > 0.3 and lo <= decision.per_set(sets, np.stack([[1.0, 3.0, 2.0, 0.5]] * 2))["ALL"][
        "pairwise_accuracy"] <= hi
