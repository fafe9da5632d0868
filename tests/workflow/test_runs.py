"""A tiny project run through the whole workflow: what its results hold."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ADDED_SHARD, SHARDS, copy_project, planned_jobs, snakemake, tiny_config, write_config

from shardmix import model as models
from shardmix import naming, perplexity, tokenizer, tokens, validation

COLUMNS = ["model", "kind", "shards", "weights", "method", "eval_set", "tokens", "bytes", "nll", "ppl", "bpb",
           "budget_tokens"]


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


def test_full_models_train_on_the_union_with_the_same_budget_per_shard(pipeline):
    log = json.loads((pipeline / "results/models/full/email+http+json/train_log.json").read_text())
    assert log["tokens"] == 3 * 2048
    assert sorted(p.split("/")[-1] for p in log["sources"]) == ["email.train.npy", "http.train.npy",
                                                              "json.train.npy"]
    # a weighted pair: 2 budgets in all, http 1/4 of them and json 3/4 (its data cycled where short)
    log = json.loads((pipeline / f"results/models/full/{WEIGHTED}/train_log.json").read_text())
    assert log["tokens"] == 2 * 2048
    assert [u["windows"] for u in log["source_use"]] == [1024 // 32, 3072 // 32]


def test_agreement_judges_every_proxy_within_groups_of_equal_budget(pipeline):
    table = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False, na_values=[""])
    sets = sorted(set(table["eval_set"]))
    agree = pd.read_csv(pipeline / "results/validation/agreement.csv", keep_default_na=False, na_values=[""],
                        dtype={"budget_tokens": str})
    assert list(agree.columns) == validation.COLUMNS
    # regression needs 5 trained mixtures per set to be judged by leave-one-out; the tiny run has 4
    assert set(agree["proxy"]) == {"merged:linear", "merged:task_arithmetic:1.5", "naive", "ensemble", "calibrated"}
    # per shard: the two pairs and the weighted pair train on 2 budgets, the triple alone on 3
    # (no choice to judge); `pooled` mixes them
    linear = agree[agree["proxy"] == "merged:linear"]
    assert set(linear["framing"]) == {"per_shard"} and set(linear["budget_tokens"]) == {"4096", "pooled"}
    for budget, n in (("4096", 3), ("pooled", 4)):
        rows = linear[linear["budget_tokens"] == budget]
        assert rows["eval_set"].tolist() == sets + ["ALL"] and (rows["n_mixtures"] == n).all()
        per_set = rows.iloc[:-1]
        for metric in ("pairwise_accuracy", "regret", "top1"):
            assert rows.iloc[-1][metric] == pytest.approx(per_set[metric].mean(), abs=1e-3)
        assert (rows["pairwise_accuracy_lo"] <= rows["pairwise_accuracy"] + 1e-9).all()
        assert (rows["pairwise_accuracy"] <= rows["pairwise_accuracy_hi"] + 1e-9).all()
    # pairwise accuracy, regret and top-1 of the pairs on one set, recomputed from the scores table
    ppl = table.set_index(["model", "eval_set"])["ppl"]
    mixtures = ["email+json", "http+json", WEIGHTED]
    true = np.array([ppl[(f"full/{m}", "json")] for m in mixtures])
    merged = np.array([ppl[(f"merged/{m}", "json")] for m in mixtures])
    row = linear[linear["budget_tokens"] == "4096"].set_index("eval_set").loc["json"]
    pairs = [(i, j) for i in range(3) for j in range(i + 1, 3)]
    agree_pairs = np.mean([np.sign(true[i] - true[j]) == np.sign(merged[i] - merged[j]) for i, j in pairs])
    assert row["pairwise_accuracy"] == pytest.approx(agree_pairs, abs=1e-4)
    assert row["regret"] == pytest.approx(true[np.argmin(merged)] / true.min() - 1, abs=1e-4)
    assert row["top1"] == float(np.argmin(merged) == np.argmin(true))
    assert row["mean_ratio"] == pytest.approx(np.mean(merged / true), abs=1e-3)
    for name in ("scatter.png", "cost.png"):
        assert (pipeline / "results/validation" / name).read_bytes()[:4] == b"\x89PNG"
    # budgets in the scores table: a shard's, k of them per k-shard mixture, none of the seed's
    budget = table.drop_duplicates("model").set_index("model")["budget_tokens"]
    assert budget["seed"] == 0 and budget["shard/json"] == 2048 and budget["full/email+http+json"] == 6144
    assert budget[f"merged/{WEIGHTED}"] == 4096


def test_the_ensemble_proxy_averages_the_members_token_probabilities(pipeline):
    """The ensemble's ppl of the weighted pair on json's held-out set, against a direct computation
    from the two shard models (their softmax probabilities mixed 1:3, token by token)."""
    pairs = pd.read_csv(pipeline / "results/validation/pairs.csv")
    row = pairs[(pairs["mixture"] == WEIGHTED) & (pairs["eval_set"] == "json")].iloc[0]
    spec = {"path": str(pipeline / "results/corpus/corpus/tokens/json.heldout.npy"), "segment": 64}
    ids = np.asarray(perplexity.load_set(spec, 1024).ids, dtype=np.int64)
    probs = []
    for shard in ("http", "json"):
        lm = models.load_causal_lm(pipeline / f"results/models/shards/{shard}").eval()
        p = []
        with torch.no_grad():
            for start, length in perplexity.windows(len(ids), 32, 64):
                x = torch.from_numpy(ids[start:start + length + 1])
                logits = lm(input_ids=x[None, :-1]).logits[0].double()
                p.append(torch.softmax(logits, -1).gather(1, x[1:, None])[:, 0])
        probs.append(torch.cat(p))
    direct = float(torch.exp(-torch.log(0.25 * probs[0] + 0.75 * probs[1]).mean()))
    assert row["ensemble"] == pytest.approx(direct, rel=1e-4)
    # and every single member's cached NLL gives back its scored ppl
    from shardmix import ensemble

    cache = ensemble.read(pipeline / "results/validation/ensemble/g0/json.safetensors")
    table = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False)
    scored = table[(table["model"] == "shard/json") & (table["eval_set"] == "json")]["ppl"].iloc[0]
    assert ensemble.ppl([cache["json"]], [1.0]) == pytest.approx(scored, rel=1e-5)


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
    assert set(predictions["basis"]) == {"calibrated", "measured"}
    budget = predictions.drop_duplicates("mixture").set_index("mixture")["budget_tokens"]
    assert (budget["email"], budget["email+http"], budget["email+http+json"]) == (2048, 4096, 6144)
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


def test_search_picks_are_checked_against_uniform_weights_on_their_budget(pipeline):
    best = pd.read_csv(pipeline / "results/search/best_mixtures.csv", keep_default_na=False)
    sizes = json.loads((pipeline / "results/corpus/corpus/manifest.json").read_text())["shards"]
    for row in best.itertuples():
        assert row.budget_tokens == 3 * 2048  # search.budget_tokens unset: uniform weights over 3 shards, per shard
        epochs = {s: float(e) for s, e in (item.split(":") for item in row.epochs.split())}
        for shard, w in naming.weights(row.weights).items():
            assert epochs[shard] == pytest.approx(w * 6144 / sizes[shard]["train_tokens"], abs=0.01)
        assert row.max_epochs <= 4 + 1e-6 and row.seed_ppl > 0
        assert (row.flag != "") == (row.predicted_ppl >= min(row.seed_ppl, row.best_subset_predicted_ppl))


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
    assert jobs["convert_seed"] == 1 and "train_seed" not in jobs
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


def test_fixed_budget_search_check_and_seed_hygiene(pipeline, tmp_path, data_dir):
    """validation.fixed_budget trains each validated mixture on one total (reusing the per-shard
    models of that total), the search's picks are checked against uniform weights on their
    budget, and seed_domains: included keeps the unused `logging` domain out of the seed."""
    work = copy_project(tmp_path / "fixed")
    config = tiny_config(data_dir)
    config["validation"].update(fixed_budget=4096, search=True)
    config["seed_domains"] = "included"
    write_config(work, config)
    snakemake(work)
    results = work / "results"
    manifest = json.loads((results / "corpus/corpus/manifest.json").read_text())["shards"]
    seed_line = (work / "logs/train_seed.log").read_text().splitlines()[0]
    assert f"{sum(manifest[s]['seed_tokens'] for s in SHARDS)} seed tokens" in seed_line
    assert manifest[ADDED_SHARD]["seed_tokens"] > 0  # split for the seed, and left out of it
    overlap = pd.read_csv(results / "validation/seed_overlap.csv")
    assert set(overlap["name"]) == set(SHARDS) | {"extra_urllib"}
    assert overlap["seen_span_share"].between(0, 1).all()
    # the triple is the one validated mixture whose per-shard total is not 4096
    assert sorted(p.name for p in (results / "models/fixed4096").iterdir()) == ["email+http+json"]
    log = json.loads((results / "models/fixed4096/email+http+json/train_log.json").read_text())
    assert [u["windows"] for u in log["source_use"]] == [43, 43, 43]  # 4096 / 3 tokens each, 32 a window
    agree = pd.read_csv(results / "validation/agreement.csv", dtype={"budget_tokens": str})
    fixed = agree[(agree["framing"] == "fixed") & (agree["proxy"] == "merged:linear")]
    assert set(fixed["budget_tokens"]) == {"4096"} and (fixed["n_mixtures"] == 4).all()
    checked = pd.read_csv(results / "search/validation.csv", keep_default_na=False)
    table = pd.read_csv(results / "scores.csv", keep_default_na=False).set_index(["model", "eval_set"])["ppl"]
    for row in checked.itertuples():
        assert row.budget_tokens == 6144
        target = {"all": list(SHARDS) + ["extra_urllib"], "json": ["json"]}[row.target]
        uniform = math.exp(np.mean([math.log(table[("full/email+http+json", s)]) for s in target]))
        assert row.uniform_true_ppl == pytest.approx(uniform, rel=1e-4)
        assert row.best_subset == "email+http+json"  # the only uniform subset trained on 6144 tokens
        assert row.vs_uniform == pytest.approx(row.search_true_ppl / row.uniform_true_ppl - 1, abs=1e-3)
        weights = naming.weights(row.weights)
        folder = "full" if len(weights) == 3 else "fixed6144"
        trained = json.loads((results / f"models/{folder}/{row.weights}/train_log.json").read_text())
        assert trained["tokens"] == pytest.approx(6144, abs=32 * len(weights))


def test_the_answers_table_leads_the_report_and_each_best_mixture_rebuilds_with_mergekit(pipeline):
    import yaml

    summary = pd.read_csv(pipeline / "results/summary.csv")
    scores = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False)
    eval_sets = sorted(scores["eval_set"].unique())
    assert summary.loc[summary["kind"] == "eval set", "answer_for"].tolist() == eval_sets
    assert summary.loc[summary["kind"] == "search target", "answer_for"].tolist() == ["all", "json"]
    predictions = pd.read_csv(pipeline / "results/predictions.csv")
    seed = scores[scores["kind"] == "seed"].set_index("eval_set")["ppl"].astype(float)
    for r in summary[summary["kind"] == "eval set"].itertuples():
        first = predictions[(predictions["eval_set"] == r.answer_for) & (predictions["rank"] == 1)].iloc[0]
        assert r.best_mixture == first["mixture"] and r.seed_ppl == pytest.approx(seed[r.answer_for], rel=1e-3)
        assert r.trust in ("high", "moderate", "low", "weak") and r.best_trained  # the tiny run trains 4 mixtures
        config = yaml.safe_load((pipeline / r.mergekit).read_text())
        assert [m["model"] for m in config["models"]] == [f"results/models/shards/{s}"
                                                          for s in naming.members(r.best_mixture)]
    landing = (pipeline / "results/summary.rst").read_text()
    assert landing.startswith("Answers\n=======") and "How it works" in landing
    html = (pipeline / "results/scores.html").read_text()
    assert "<th>eval_set</th>" not in html and "Really trained mixtures" in html and "class='best'" in html


def test_the_console_shows_running_jobs_with_their_eta(pipeline, tmp_path, monkeypatch):
    work = tmp_path / "project"
    shutil.copytree(pipeline, work, symlinks=True)
    monkeypatch.setenv("SHARDMIX_PROGRESS_SECONDS", "1")
    monkeypatch.setenv("SHARDMIX_STEP_SECONDS", "0.4")  # 8 steps of 0.4 s: a job long enough to watch
    proc = snakemake(work, "--force", "results/models/shards/json")
    lines = [line for line in proc.stderr.splitlines() if "[progress" in line or "running train_shard" in line]
    assert any("jobs done" in line for line in lines), proc.stderr[-3000:]
    assert any("running train_shard json" in line and "ETA" in line for line in lines), "\n".join(lines)


def test_the_minimal_example_config_plans_as_written(tmp_path):
    from helpers import ROOT

    work = copy_project(tmp_path / "p")
    shutil.copytree(ROOT / "examples", work / "examples")
    proc = snakemake(work, "--dry-run", "--configfile", "examples/minimal.yaml")
    jobs = planned_jobs(proc)
    assert jobs["build_demo_corpus"] == 1 and jobs["split_source"] == 1, jobs
