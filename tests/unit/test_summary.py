"""Unit tests of shardmix.summary: the answers table on small hand-made results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shardmix import summary

SCORES = pd.DataFrame([
    # model, kind, shards, eval_set, ppl, budget_tokens
    ("seed", "seed", "", "a", 100.0, 0), ("seed", "seed", "", "b", 50.0, 0),
    ("shard/x", "shard", "x", "a", 80.0, 10), ("shard/y", "shard", "y", "a", 90.0, 10),
    ("merged/x+y", "merged", "x+y", "a", 85.0, 20), ("merged/x+y", "merged", "x+y", "b", 45.0, 20),
    ("full/x+y", "full", "x+y", "a", 70.0, 20), ("fixed40/x@0.25+y@0.75", "fixed40", "x+y", "a", 75.0, 40),
], columns=summary.COLUMNS_READ)


def agreement(accuracy, n, lo, hi):
    return pd.DataFrame([{"proxy": "merged:linear", "framing": "per_shard", "budget_tokens": "20", "eval_set": "a",
                          "n_mixtures": n, "pairwise_accuracy": accuracy, "pairwise_accuracy_lo": lo,
                          "pairwise_accuracy_hi": hi}])


def test_without_trained_mixtures_the_best_merged_or_shard_model_answers_unchecked():
    rows = {r["answer_for"]: r for r in summary.eval_set_rows(SCORES, None, None, "merged:linear")}
    assert rows["a"]["best_mixture"] == "x" and rows["a"]["ppl"] == 80 and rows["a"]["seed_ppl"] == 100
    assert rows["b"]["best_mixture"] == "x+y" and rows["b"]["vs_seed"] == pytest.approx(-0.1)
    assert rows["a"]["best_trained"] == "x+y" and rows["a"]["best_trained_ppl"] == 70
    assert rows["a"]["trust"] == "unchecked" and rows["b"]["best_trained"] == ""


def test_the_ranking_proxys_figure_and_its_trust_in_words():
    predictions = pd.DataFrame([{"mixture": "x+y", "eval_set": "a", "rank": 1, "ranked_by": "merged",
                                 "merged_ppl": 85.0, "predicted_ppl": 72.0, "regression_ppl": np.nan}])
    rows = summary.eval_set_rows(SCORES, predictions, agreement(0.95, 8, 0.9, 1.0), "merged:linear")
    assert rows[0]["ppl"] == 85.0 and rows[0]["trust"] == "high"
    assert "ordered 95% of pairs of 8 trained mixtures" in rows[0]["trust_note"]
    assert summary.trust_words(agreement(0.6, 8, 0.5, 0.7), "merged:linear", "a")[0] == "low"
    assert summary.trust_words(agreement(0.9, 3, 0.5, 1.0), "merged:linear", "a")[0] == "weak"
    calibrated = predictions.assign(ranked_by="calibrated")
    assert summary.eval_set_rows(SCORES, calibrated, None, "merged:linear")[0]["ppl"] == 72.0


def test_a_search_target_is_confirmed_only_when_training_it_beat_uniform_and_the_seed():
    found = pd.DataFrame([{"target": "t", "weights": "x@0.3+y@0.7", "ranked_by": "merged", "predicted_ppl": 60.0,
                           "seed_ppl": 70.0, "flag": ""}])
    checked = pd.DataFrame([{"target": "t", "budget_tokens": 40, "search_true_ppl": 55.0, "uniform_true_ppl": 58.0,
                             "seed_ppl": 70.0}])
    row, = summary.target_rows(found, checked)
    assert row["trust"] == "confirmed" and row["best_trained"] == "x@0.3+y@0.7" and row["best_trained_ppl"] == 55
    row, = summary.target_rows(found, checked.assign(search_true_ppl=59.0))
    assert row["trust"] == "not confirmed" and row["best_trained"] == "uniform over all shards"
    assert summary.target_rows(found, None)[0]["trust"] == "unchecked"


def test_a_large_scores_table_is_read_in_pieces_keeping_only_what_answers(tmp_path):
    many = pd.concat([SCORES] + [pd.DataFrame([(f"merged/m{i}", "merged", f"m{i}", "a", 90.0 + i % 7, 20)],
                                              columns=summary.COLUMNS_READ) for i in range(2000)], ignore_index=True)
    many["weights"] = ""
    many.to_parquet(tmp_path / "scores.parquet", row_group_size=300)
    kept = summary.read_scores(str(tmp_path / "scores.parquet"))
    assert len(kept) == 4 + 2  # seed x2, full, fixed; the best scored row per eval set
    assert sorted(kept.loc[kept["kind"].isin(["merged", "shard"]), "model"]) == ["merged/x+y", "shard/x"]
    frame = summary.table(summary.eval_set_rows(kept, None, None, "merged:linear"))
    html = summary.html_table(frame)
    assert "<td>x</td>" in html and "<td title='x+y'>x, y</td>" in html  # the whole name on hover where cut
