"""Unit tests of shardmix.calibration."""

from __future__ import annotations

import numpy as np
import pytest

from shardmix import calibration


def _synthetic_pairs(coef=(0.5, 1.1, -0.2), noise=0.0, n=8, seed=0):
    rng = np.random.default_rng(seed)
    merged = rng.uniform(20, 60, n)
    n_eff = rng.choice([2.0, 3.0, 1.6, 2.4], n)
    true = np.exp(coef[0] + coef[1] * np.log(merged) + coef[2] * np.log(n_eff) + rng.normal(0, noise, n))
    import pandas as pd

    return pd.DataFrame({"eval_set": "s", "mixture": [f"m{i}" for i in range(n)], "weighted": False, "members": 2,
                         "n_eff": n_eff, "true": true, "merged:linear": merged, "framing": "per_shard",
                         "budget_tokens": 4096})


def test_calibration_recovers_a_known_relation_and_beats_a_biased_proxy():
    pairs = _synthetic_pairs()
    table, fits, loo = calibration.calibrate(pairs, "merged:linear")
    row = table.iloc[0]
    assert (row["a"], row["b"], row["c"]) == pytest.approx((0.5, 1.1, -0.2), abs=1e-6)
    assert row["loo_rel_error"] < 1e-6 and row["loo_pairwise"] == 1.0 and row["loo_regret"] == 0
    assert np.allclose(loo, pairs["true"])
    # merged ppl alone prefers small n_eff; the truth rewards more members: calibration ranks
    assert row["raw_pairwise"] < 1 and row["ranked_by"] == "calibrated"
    noisy = _synthetic_pairs(noise=0.05, n=12, seed=1)
    fit = calibration.calibrate(noisy, "merged:linear")[1]["s"]
    mean, half = fit.log_predict(noisy["merged:linear"], noisy["n_eff"])
    inside = np.abs(np.log(noisy["true"]) - mean) <= half
    assert half.min() > 0 and inside.mean() >= 0.75
    few = calibration.calibrate(_synthetic_pairs(n=3), "merged:linear")[0].iloc[0]
    assert few["ranked_by"] == "merged" and np.isnan(few["loo_regret"])
