"""The workflow end to end on the tiny config: outputs, caching, fresh clones, adding a shard."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ADDED_SHARD, SHARDS, copy_project, planned_jobs, snakemake, tiny_config, write_config

from shardmix import model as models
from shardmix import naming, perplexity, tokenizer, tokens

COLUMNS = ["model", "kind", "shards", "weights", "method", "eval_set", "tokens", "bytes", "nll", "ppl", "bpb"]
WEIGHTED = "http@0.25+json@0.75"


def test_scores_table_covers_every_model_and_eval_set(pipeline):
    table = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False)
    assert list(table.columns) == COLUMNS
    eval_sets = set(SHARDS) | {"extra_urllib"}
    assert set(table["eval_set"]) == eval_sets
    # seed + 3 shard models + (3 pairs + 1 triple + 1 weighted pair) x 2 merge methods + 4 really trained
    kinds = {"seed": 1, "shard": 3, "merged": 10, "full": 4}
    assert table.groupby("kind")["model"].nunique().to_dict() == kinds
    assert len(table) == sum(kinds.values()) * len(eval_sets)
    full = table[table["kind"] == "full"]
    assert set(full["model"]) == {"full/email+json", "full/http+json", "full/email+http+json", f"full/{WEIGHTED}"}
    assert not table.duplicated(["model", "eval_set"]).any()
    merged = table[table["kind"] == "merged"]
    assert set(merged["shards"]) == {"email+json", "http+json", "email+http", "email+http+json"}
    linear = merged[merged["method"] == "linear"]
    assert set(linear["model"]) == {f"merged/{m}" for m in ("email+json", "http+json", "email+http",
                                                            "email+http+json", WEIGHTED)}
    assert set(merged[merged["method"] == "task_arithmetic:1.5"]["model"]) == {
        m.replace("merged/", "merged[task_arithmetic:1.5]/") for m in linear["model"]}
    # weights in the order of `shards`
    weights = dict(zip(merged["model"], merged["weights"]))
    assert weights[f"merged/{WEIGHTED}"] == "0.25+0.75" and weights["merged/email+http+json"] == "0.3333+0.3333+0.3333"
    assert set(table[table["kind"] == "shard"]["weights"]) == {"1"} and set(table[table["kind"] == "seed"]["weights"]) == {""}
    assert np.allclose(table["ppl"], np.exp(table["nll"] / table["tokens"]))
    assert np.allclose(table["bpb"], table["nll"] / (math.log(2) * table["bytes"]))
    # 1024 tokens of an extra set (one stream) give 1023 predictions; a held-out set's are 16
    # chunks of 64 tokens, and no window predicts a chunk's first token from another chunk
    extra = table["eval_set"] == "extra_urllib"
    assert (table.loc[extra, "tokens"] == 1023).all() and (table.loc[~extra, "tokens"] == 1024 - 16).all()
    # byte-level BPE tokens average more than one byte
    assert (table["bytes"] > table["tokens"]).all()


def test_shard_models_improve_on_their_own_heldout_part(pipeline):
    table = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False)
    ppl = table.set_index(["model", "eval_set"])["ppl"]
    for shard in SHARDS:
        assert ppl[(f"shard/{shard}", shard)] < ppl[("seed", shard)]


def test_models_load_with_auto_classes_and_keep_a_training_log(pipeline):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shard_dir = pipeline / "results/models/shards/json"
    lm = AutoModelForCausalLM.from_pretrained(shard_dir, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(shard_dir, local_files_only=True)
    assert (shard_dir / "model.safetensors").exists()
    assert lm.config.vocab_size == len(tok) == 512
    log = json.loads((shard_dir / "train_log.json").read_text())
    assert log["tokens"] == 2048 and log["steps"] == 8 and len(log["loss"]) == 8
    assert log["seconds"] > 0 and log["tokens_per_second"] > 0
    assert "tokens/s" in (pipeline / "logs/train_shard/json.log").read_text()


def test_merged_scores_equal_scores_of_explicitly_averaged_weights(pipeline):
    """The streamed merge must give the same model as averaging the full state dicts."""
    results = pipeline / "results"
    members = ["email", "http", "json"]
    states = [models.load_causal_lm(results / f"models/shards/{s}").state_dict() for s in members]
    lm = models.load_causal_lm(results / "models/shards/json")
    lm.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
    # a held-out set: chunks of sharding.chunk_tokens joined end to end
    ids = perplexity.EvalSet(tokens.load(results / "corpus/corpus/tokens/email.heldout.npy")[:1024], 64)
    lengths = tokenizer.token_byte_lengths(tokenizer.load(results / "tokenizer"))
    expected = perplexity.evaluate(lm, ids, lengths, 32, 16, torch.device("cpu"))
    table = pd.read_csv(results / "scores.csv", keep_default_na=False).set_index(["model", "eval_set"])
    row = table.loc[("merged/email+http+json", "email")]
    assert row["ppl"] == pytest.approx(expected["ppl"], rel=1e-5)
    assert row["bytes"] == expected["bytes"]
    # the weighted pair: 1/4 http, 3/4 json
    lm.load_state_dict({k: 0.25 * states[1][k] + 0.75 * states[2][k] for k in states[0]})
    expected = perplexity.evaluate(lm, ids, lengths, 32, 16, torch.device("cpu"))
    assert table.loc[(f"merged/{WEIGHTED}", "email"), "ppl"] == pytest.approx(expected["ppl"], rel=1e-5)


def test_plots_are_written(pipeline):
    for name in ("heatmap.png", "ranking.png"):
        data = (pipeline / "results/plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_second_run_does_nothing(pipeline):
    proc = snakemake(pipeline, "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_fresh_clone_pointed_at_existing_results_retrains_nothing(pipeline, tmp_path, data_dir):
    clone = copy_project(tmp_path / "clone", preserve_times=False)  # every code file newer than results
    write_config(clone, tiny_config(data_dir))
    shutil.copytree(pipeline / "results", clone / "results")  # results keep their times; no .snakemake
    proc = snakemake(clone, "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_adding_a_source_splits_only_it_and_trains_one_model_per_new_shard(grown, pipeline):
    work, jobs, changed = grown
    assert jobs["split_source"] == 1 and jobs["train_shard"] == 1, jobs
    for rule in ("seed_model", "train_tokenizer", "record_foundation", "tokenize_eval_set", "train_full"):
        assert rule not in jobs, rule
    # the new shard's batches (logging + 3 pairs + 3 triples, batch_size 3 -> 3) on both eval-set
    # groups (the old sets; the new held-out set, a group of its own), and the 8 old batches (seed,
    # json, email, http x2, the weighted pair, 2 of really trained mixtures) on the new set only
    assert jobs["evaluate_batch"] == 3 * 2 + 8 and jobs["record_eval_groups"] == 1
    outputs = ("scores.csv", "scores.parquet", "scores.html", "heatmap.png", "ranking.png", "agreement.csv",
               "agreement_naive.csv", "agreement.html", "scatter.png", "cost.png", "shards.csv", "run_config.json",
               "calibration.csv", "predictions.csv", "eval_groups.json", "all.json", "json.json", "best_mixtures.csv",
               "weights.png")
    assert all(p.name.removesuffix(".sha256") in outputs for p in changed), changed  # each with its seal
    record = "results/corpus/foundation.json"
    assert (work / record).read_text() == (pipeline / record).read_text()
    sizes = pd.read_csv(work / "results/corpus/shards.csv").set_index(["source", "shard"])
    assert set(sizes.index.get_level_values("source")) == {"corpus", "more"}
    assert not sizes.loc[("more", "unittest"), "used"]  # split, not included
    assert not sizes.loc[("corpus", ADDED_SHARD), "used"]  # the same name in the first source, unused
    assert sizes.loc[("more", ADDED_SHARD), "used"] and sizes.loc[("more", ADDED_SHARD), "fits_budget"]
    table = pd.read_csv(work / "results/scores.csv", keep_default_na=False)
    assert ADDED_SHARD in set(table["eval_set"])
    # seed, 4 shards, (6 pairs, 4 triples, 1 weighted pair) x 2 methods, 4 full
    assert table["model"].nunique() == 1 + 4 + 2 * (6 + 4 + 1) + 4


def test_full_models_train_on_the_union_with_the_same_budget_per_shard(pipeline):
    log = json.loads((pipeline / "results/models/full/email+http+json/train_log.json").read_text())
    assert log["tokens"] == 3 * 2048
    assert sorted(p.split("/")[-1] for p in log["sources"]) == ["email.train.npy", "http.train.npy",
                                                              "json.train.npy"]
    # a weighted pair: 2 budgets in all, http 1/4 of them and json 3/4 (its data cycled where short)
    log = json.loads((pipeline / f"results/models/full/{WEIGHTED}/train_log.json").read_text())
    assert log["tokens"] == 2 * 2048
    assert [u["windows"] for u in log["source_use"]] == [1024 // 32, 3072 // 32]


def test_agreement_tables_measure_correlation_and_picking(pipeline):
    columns = ["proxy", "mixtures", "eval_set", "n_mixtures", "pearson", "spearman", "kendall", "top1_agree",
               "regret", "mean_ratio"]
    table = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False)
    sets = sorted(set(table["eval_set"]))
    agree = pd.read_csv(pipeline / "results/validation/agreement.csv", keep_default_na=False, na_values=[""])
    naive = pd.read_csv(pipeline / "results/validation/agreement_naive.csv")
    for frame in (agree, naive):
        assert list(frame.columns) == columns
    assert set(agree["proxy"]) == {"merged:linear", "merged:task_arithmetic:1.5", "calibrated"}
    linear = agree[(agree["proxy"] == "merged:linear") & (agree["mixtures"] == "all")]
    assert linear["eval_set"].tolist() == sets + ["ALL"] and (linear["n_mixtures"] == 4).all()
    assert set(agree["mixtures"]) == {"all", "uniform", "weighted"}
    assert (agree[agree["mixtures"] == "uniform"]["n_mixtures"] == 3).all()
    per_set = linear.iloc[:-1]
    assert linear.iloc[-1]["pearson"] == pytest.approx(per_set["pearson"].mean(), abs=1e-3)
    assert linear.iloc[-1]["regret"] == pytest.approx(per_set["regret"].mean(), abs=1e-3)
    # regret, top-1 and mean_ratio on one set, recomputed from the scores table
    ppl = table.set_index(["model", "eval_set"])["ppl"]
    mixtures = ["email+json", "http+json", "email+http+json", WEIGHTED]
    true = np.array([ppl[(f"full/{m}", "json")] for m in mixtures])
    merged = np.array([ppl[(f"merged/{m}", "json")] for m in mixtures])
    row = per_set.set_index("eval_set").loc["json"]
    assert row["regret"] == pytest.approx(true[np.argmin(merged)] / true.min() - 1, abs=1e-4)
    assert row["top1_agree"] == float(np.argmin(merged) == np.argmin(true))
    assert row["mean_ratio"] == pytest.approx(np.mean(merged / true), abs=1e-3)
    # the naive proxy: the weighted mean of the members' ppl
    naive_json = [0.25 * ppl[("shard/http", "json")] + 0.75 * ppl[("shard/json", "json")]]
    assert naive_json[0] > 0
    for name in ("scatter.png", "cost.png"):
        assert (pipeline / "results/validation" / name).read_bytes()[:4] == b"\x89PNG"


def test_calibration_and_predictions(pipeline):
    results = pipeline / "results"
    cal = pd.read_csv(results / "validation/calibration.csv")
    assert sorted(cal["eval_set"]) == sorted(set(SHARDS) | {"extra_urllib"})
    assert (cal["n_mixtures"] == 4).all() and cal["ranked_by"].isin(["calibrated", "merged"]).all()
    assert cal["loo_rel_error"].notna().all() and cal["b"].notna().all()
    predictions = pd.read_csv(results / "predictions.csv", keep_default_na=False, na_values=[""])
    # every scored mixture (5 linear merges, 3 shards) on every eval set, with an interval
    assert len(predictions) == (5 + 3) * 4
    merged = predictions[predictions["basis"] == "calibrated"]
    assert len(merged) == 5 * 4 and (merged["lower"] <= merged["predicted_ppl"]).all()
    assert (merged["predicted_ppl"] <= merged["upper"]).all()
    assert predictions["true_ppl"].notna().sum() == 4 * 4  # the trained mixtures carry their true ppl
    for _, g in predictions.groupby("eval_set"):
        assert sorted(g["rank"]) == list(range(1, len(g) + 1)) or g["rank"].min() == 1


def test_search_finds_weights_over_every_shard(pipeline):
    best = pd.read_csv(pipeline / "results/search/best_mixtures.csv")
    assert best["target"].tolist() == ["all", "json"]
    for row in best.itertuples():
        weights = naming.weights(row.weights)
        assert set(weights) <= set(SHARDS) and sum(weights.values()) == pytest.approx(1)
        assert min(weights.values()) >= 0.05  # search.min_weight
        assert row.predicted_ppl > 0 and row.merged_ppl > 0 and row.best_subset
        log = json.loads((pipeline / f"results/search/targets/{row.target}.json").read_text())
        assert log["search"] == "gradient" and log["mixture"] == row.weights
    assert (pipeline / "results/search/weights.png").read_bytes()[:4] == b"\x89PNG"


def test_moving_a_finished_run_to_other_hardware_retrains_nothing(pipeline, tmp_path, data_dir):
    work = tmp_path / "moved"
    shutil.copytree(pipeline, work, symlinks=True)
    config = tiny_config(data_dir)
    config["runtime"] = {"device": "cpu", "gpus_per_job": 1, "seed_threads": 1, "train_threads": 2, "eval_threads": 2}
    write_config(work, config)
    proc = snakemake(work, "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_seed_from_a_local_bf16_pytorch_bin_checkpoint_is_converted_once_and_keeps_its_dtype(
        pipeline, tmp_path, data_dir):
    checkpoint = tmp_path / "bin-lm"
    lm = models.load_causal_lm(pipeline / "results/models/seed").to(torch.bfloat16)
    lm.config.dtype = torch.bfloat16
    lm.config.save_pretrained(checkpoint)
    torch.save(lm.state_dict(), checkpoint / "pytorch_model.bin")
    tokenizer.load(pipeline / "results/models/seed").save_pretrained(checkpoint)
    work = copy_project(tmp_path / "p")
    config = tiny_config(data_dir)
    config.update(model={"source": "pretrained", "path": str(checkpoint), "context": 32},
                  tokenizer={"source": "pretrained"}, mixtures={"max_size": 2}, eval_sets=[])
    config["sharding"]["include"] = ["json", "email"]
    del config["validation"], config["seed_training"]
    write_config(work, config)
    jobs = planned_jobs(snakemake(work))
    assert jobs["convert_seed"] == 1 and "seed_model" not in jobs
    seed = work / "results/models/seed"
    assert (seed / "model.safetensors").exists() and not (seed / "pytorch_model.bin").exists()
    for model in (seed, work / "results/models/shards/json"):
        assert models.checkpoint_dtype(model) == torch.bfloat16
    shard_bytes = (work / "results/models/shards/json/model.safetensors").stat().st_size
    assert shard_bytes < 0.6 * (pipeline / "results/models/shards/json/model.safetensors").stat().st_size
    table = pd.read_csv(work / "results/scores.csv", keep_default_na=False)
    assert sorted(table["model"].unique()) == ["merged/email+json", "seed", "shard/email", "shard/json"]
    # the same seed (bf16-rounded) as the pipeline's, so its scores are close to the originals
    original = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False).set_index(["model", "eval_set"])
    for row in table[table["kind"] == "seed"].itertuples():
        assert row.ppl == pytest.approx(original.loc[("seed", row.eval_set), "ppl"], rel=2e-2)
    assert not (work / "results/tokenizer").exists()
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(snakemake(work, "--dry-run"))
