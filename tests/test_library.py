"""The shardmix package on small real data: readers, sharding, mixtures, training."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import stdlib_documents, write_jsonl
from test_bad_input import _tok

from shardmix import calibration, merging, mixtures, naming, perplexity, search, sharding, tokens, training
from shardmix import model as models
from shardmix.corpus import Document, read_documents
from shardmix.naming import mixture_name, safe_name

DOCS = [d for pkg in ("json", "http") for d in stdlib_documents(pkg, 8_000)]


def _texts(spec):
    return [(d.text, d.meta.get("domain", d.meta.get("dir"))) for d in read_documents(spec)]


def test_every_corpus_format_reads_the_same_documents(tmp_path):
    import datasets
    import pandas as pd

    expected = [(d["text"], d["domain"]) for d in DOCS]
    write_jsonl(tmp_path / "c.jsonl", DOCS)
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(d) + "\n" for d in DOCS)
    pd.DataFrame(DOCS).to_parquet(tmp_path / "c.parquet")
    datasets.Dataset.from_list(DOCS).save_to_disk(str(tmp_path / "hf"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(DOCS)}).save_to_disk(str(tmp_path / "hfdict"))
    for name in ("c.jsonl", "c.jsonl.gz", "c.parquet", "hf", "hfdict"):
        assert _texts({"path": str(tmp_path / name)}) == expected, name
    folder = tmp_path / "txt"
    for i, d in enumerate(DOCS):
        (folder / d["domain"]).mkdir(parents=True, exist_ok=True)
        (folder / d["domain"] / f"{i:03d}.txt").write_text(d["text"])
    assert sorted(_texts({"path": str(folder)})) == sorted(expected)


def test_text_field_is_configurable(tmp_path):
    write_jsonl(tmp_path / "c.jsonl", [{"body": "hello", "domain": "a"}])
    assert _texts({"path": str(tmp_path / "c.jsonl"), "text_field": "body"}) == [("hello", "a")]


def _spec(**kw):
    return {"method": "field", "field": "domain", "unit_tokens": 1000, "k": 3, "chunk_tokens": 16,
            "heldout_fraction": 0.2, "seed_fraction": 0.3, "seed": 0, **kw}


def _split(tmp_path, **kw):
    docs = [Document(d["text"], {"domain": d["domain"]}, f"c.jsonl:{i}") for i, d in enumerate(DOCS, 1)]
    return sharding.split_source(docs, _tok(), _spec(**kw), tmp_path / "tokens", tmp_path / "manifest.json", {})


def test_split_keeps_every_token_once_and_seed_apart_from_heldout(tmp_path):
    manifest = _split(tmp_path)
    assert set(manifest["shards"]) == {"json", "http"}
    parts = {(s, p): np.load(tmp_path / f"tokens/{s}.{p}.npy") for s in ("json", "http") for p in ("train", "heldout")}
    seed = np.load(tmp_path / "tokens/seed.npy")
    total = sum(len(v) for v in parts.values()) + len(seed)
    assert total == manifest["total_tokens"]
    for s in ("json", "http"):
        info = manifest["shards"][s]
        share = info["heldout_tokens"] / (info["train_tokens"] + info["heldout_tokens"] + info["seed_tokens"])
        assert 0.1 < share < 0.3
    # the split of a shard depends only on its own name and tokens
    again = _split(tmp_path / "again")
    assert again == manifest


def test_field_units_cut_big_domains_into_equal_base_units(tmp_path):
    manifest = _split(tmp_path, method="field_units", unit_tokens=1500)
    units = sorted(n for n in manifest["shards"] if n.startswith("http-"))
    assert len(units) >= 2
    sizes = [sum(manifest["shards"][u][k] for k in ("train_tokens", "heldout_tokens", "seed_tokens")) for u in units]
    assert max(sizes) - min(sizes) <= 1
    assert "json" in manifest["shards"] or any(n.startswith("json-") for n in manifest["shards"])


def test_random_split_makes_k_shards(tmp_path):
    manifest = _split(tmp_path, method="random", k=3)
    assert set(manifest["shards"]) <= {"random-00", "random-01", "random-02"}
    assert len(manifest["shards"]) >= 2


def test_names_are_safe_and_mixtures_canonical():
    assert safe_name("Web / Text (en)") == "Web_Text_en"
    assert mixture_name(["b", "a", "c"]) == mixture_name(["c", "b", "a"]) == "a+b+c"


def test_adding_a_shard_leaves_existing_batches_untouched():
    spec = {"max_size": 3, "random": {"fraction": 0.5, "sizes": [4], "seed": 1}, "explicit": [], "batch_size": 4}
    old = ["a", "b", "c", "d", "e"]
    before = mixtures.batches(old, mixtures.candidate_mixtures(old, spec), 4)
    after = mixtures.batches(old + ["f"], mixtures.candidate_mixtures(old + ["f"], spec), 4)
    for batch, members in before.items():
        assert after[batch] == members
    new = set(after) - set(before)
    assert new and all(b.startswith("f.") for b in new)
    assert all("f" in m for b in new for m in after[b])


def test_mixture_selection():
    shards = ["a", "b", "c", "d"]
    allpairs = mixtures.candidate_mixtures(shards, {"max_size": 2, "explicit": [["d", "c", "a"]]})
    assert len(allpairs) == 6 + 1 and "a+c+d" in allpairs
    sampled = mixtures.candidate_mixtures(shards, {"max_size": 1, "random": {"fraction": 0.5, "sizes": [2, 3], "seed": 3}})
    assert 0 < len(sampled) < 10 and all(len(naming.members(m)) in (2, 3) for m in sampled)
    with pytest.raises(mixtures.MixtureError, match=r"mixtures.explicit\[0\] names shard 'z'"):
        mixtures.candidate_mixtures(shards, {"max_size": 2, "explicit": [["a", "z"]]})


def test_weighted_names_are_canonical_and_uniform_weights_name_the_subset():
    assert mixture_name({"b": 0.75, "a": 0.25}) == mixture_name({"a": 3, "b": 9}) == "a@0.25+b@0.75"
    assert mixture_name({"c": 1, "a": 1, "b": 1}) == mixture_name(["a", "b", "c"]) == "a+b+c"
    assert mixture_name({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3 + 1e-5}) == "a+b+c"
    assert mixture_name({"a": 0.5, "b": 0.5, "c": 0.0}) == "a+b"  # a zero weight leaves the mixture
    name = mixture_name({"x": 0.2, "y": 0.3, "z": 0.5})
    assert naming.weights(name) == {"x": 0.2, "y": 0.3, "z": 0.5}
    assert naming.weights_column(name) == "0.2+0.3+0.5" and naming.weights_column("a+b+c") == "0.3333+0.3333+0.3333"
    units = naming.quantize({"a": 1, "b": 1, "c": 1, "d": 4})
    assert sum(units.values()) == naming.UNITS
    with pytest.raises(naming.MixtureNameError):
        mixture_name({"a": 0, "b": 0})


def test_weighted_candidates_grid_and_dirichlet():
    shards = ["a", "b", "c", "d"]
    grid = mixtures.simplex_grid(["a", "b", "c"], 0.25)
    # 15 points of the 0.25 grid over 3 shards, less the 3 single shards
    assert len(grid) == 12 and "a@0.5+b@0.25+c@0.25" in grid and "a+b" in grid
    with pytest.raises(mixtures.MixtureError, match="does not divide 1"):
        mixtures.simplex_grid(["a", "b"], 0.3)
    draws = mixtures.dirichlet_sample(shards, 5, 1.0, 0)
    assert draws == mixtures.dirichlet_sample(list(reversed(shards)), 5, 1.0, 0)  # keyed by the set, not its order
    assert all(naming.members(m) == shards and abs(sum(naming.weights(m).values()) - 1) < 1e-9 for m in draws)
    assert mixtures.dirichlet_sample(shards, 5, 1.0, 1) != draws
    spec = {"max_size": 2, "grid": [{"step": 0.25, "shards": ["a", "b", "c"]}],
            "dirichlet": [{"count": 3, "alpha": 1.0, "seed": 0, "shards": None}],
            "weighted": [{"a": 0.9, "d": 0.1}]}
    found = mixtures.candidate_mixtures(shards, spec)
    assert found["a+b"] == "subset" and found["a@0.5+b@0.25+c@0.25"] == "weighted"
    assert found["a@0.9+d@0.1"] == "weighted" and sum(f == "pool" for f in found.values()) == 3
    with pytest.raises(mixtures.MixtureError, match=r"mixtures.weighted\[0\] names shard 'z'"):
        mixtures.candidate_mixtures(shards, {"max_size": 2, "weighted": [{"a": 1, "z": 1}]})


def test_adding_a_shard_leaves_weighted_batches_untouched():
    spec = {"max_size": 2, "grid": [{"step": 0.5, "shards": ["a", "c"]}, {"step": 0.25, "shards": ["b", "c", "d"]}],
            "dirichlet": [{"count": 4, "alpha": 1.0, "seed": 0, "shards": None},
                          {"count": 3, "alpha": 0.5, "seed": 0, "shards": ["a", "b"]}],
            "weighted": [{"a": 0.9, "b": 0.1}]}
    old = ["a", "b", "c", "d"]
    before = mixtures.batches(old, mixtures.candidate_mixtures(old, spec), 5)
    after = mixtures.batches(old + ["e"], mixtures.candidate_mixtures(old + ["e"], spec), 5)
    # the pool-wide sample is redrawn over the grown pool: its old batch leaves the plan
    assert [b for b in before if b not in after] == ["d.r000"]
    for batch, names in before.items():
        assert batch == "d.r000" or after[batch] == names
    new = set(after) - set(before)
    assert new == {"e.000", "e.r000"} and all("e" in naming.members(m) for b in new for m in after[b])


def test_validation_sample_draws_weighted_picks_and_keeps_them():
    shards = ["a", "b", "c", "d"]
    spec = {"max_size": 3, "grid": [{"step": 0.25, "shards": ["a", "b", "c"]}]}
    scored = mixtures.candidate_mixtures(shards, spec)
    sample = {"count": 5, "sizes": [2, 3], "seed": 0, "weighted": 2}
    picks = mixtures.validation_sample(scored, sample, shards)
    assert len(picks) == 5 and sum(map(naming.is_weighted, picks)) == 2
    grown = mixtures.candidate_mixtures(shards + ["e"], spec)
    assert mixtures.validation_sample(grown, sample, shards + ["e"], {"random": sample, "picks": picks}) == picks


def test_training_is_deterministic_on_cpu_and_lowers_the_loss():
    tok = _tok()
    ids = np.concatenate([np.asarray(tok(d["text"])["input_ids"]) for d in DOCS])
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32,
            "tie_embeddings": True, "init_seed": 0}
    cfg = {"batch_size": 8, "lr": 0.01, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
           "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0, "log_every": 100}
    runs = []
    for _ in range(2):
        lm = models.build_llama(arch, tok)
        log = training.train(lm, [ids], [32 * 8 * 12], cfg, 32, torch.device("cpu"))
        runs.append((lm.state_dict(), log))
    (a, log), (b, _) = runs
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert log["steps"] == 12 and log["tokens"] == 32 * 8 * 12
    assert np.mean(log["loss"][-3:]) < np.mean(log["loss"][:3])


def test_equal_budget_per_source_in_a_mixture():
    rng = np.random.default_rng(0)
    plan = training.window_plan([1000, 100_000], [20, 20], 32, rng)
    assert np.bincount(plan[:, 0]).tolist() == [20, 20]
    # a small source is cycled: 1000 tokens hold 31 windows, all used before any repeats
    assert len(set(plan[plan[:, 0] == 0][:, 1])) == 20


def test_validation_sample_keeps_its_picks_when_shards_are_added():
    spec = {"count": 4, "sizes": [2, 3], "seed": 0}
    six = [f"s{i}" for i in range(6)]
    before = mixtures.validation_sample(mixtures.candidate_mixtures(six[:4], {"max_size": 3}), spec, six[:4])
    record = {"random": spec, "picks": [naming.members(m) for m in before]}  # older records list members
    grown = mixtures.candidate_mixtures(six, {"max_size": 3})
    assert mixtures.validation_sample(grown, spec, six, record) == before
    assert mixtures.validation_sample(grown, spec, six) != before
    assert len(mixtures.validation_sample(grown, {**spec, "count": 6}, six, record)) == 6
    assert set(before) < set(mixtures.validation_sample(grown, {**spec, "count": 6}, six, record))
    assert mixtures.validation_sample(grown, {**spec, "seed": 1}, six, record) == \
        mixtures.validation_sample(grown, {**spec, "seed": 1}, six)


CRASHING_TRAINER = """
import sys, torch
sys.path.insert(0, {root!r})
from test_library import _resumable_run
_resumable_run({folder!r}, checkpoint_every=2)
"""


def _resumable_run(folder, checkpoint_every, inputs=()):
    """Train a tiny model for 8 steps; return its weights."""
    tok = _tok()
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16, "tie_embeddings": True,
            "init_seed": 0}
    lm = models.build_llama(arch, tok)
    data = np.random.default_rng(0).integers(0, len(tok), 4000)
    cfg = {"batch_size": 4, "lr": 0.003, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
           "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0}
    log = training.train(lm, [data], [512], cfg, 16, torch.device("cpu"), label="t", resume_dir=folder,
                         checkpoint_every=checkpoint_every, inputs=inputs)
    return lm.state_dict(), log


def test_training_killed_midway_resumes_to_the_same_weights(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    reference, _ = _resumable_run(None, 0)
    folder = str(tmp_path / "resume")
    tests = str(Path(__file__).parent)
    env = dict(os.environ, SHARDMIX_CRASH_AT="step:t:7", PYTHONPATH=f"{tests}:{Path(tests).parent}")
    proc = subprocess.run([sys.executable, "-c", CRASHING_TRAINER.format(root=tests, folder=folder)], env=env,
                          start_new_session=True, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (tmp_path / "resume/state.json").exists() and (tmp_path / "resume/state-6.safetensors").exists()
    other_seed = tmp_path / "seed.bin"
    other_seed.write_bytes(b"a retrained seed")
    _, fresh = _resumable_run(folder, 0, inputs=[other_seed])  # another input: the state is not its own
    assert "resumed_from_step" not in fresh
    resumed, log = _resumable_run(folder, 2)
    assert log["resumed_from_step"] == 6 and len(log["loss"]) == log["steps"] == 8
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_a_huge_document_is_tokenized_in_bounded_memory(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = """
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from test_bad_input import _tok
from shardmix import tokenizer
tok = _tok()
text = open(sys.argv[2]).read()
tokenizer.encode_documents(tok, [text[:2_000_000]])  # the per-call peak: bounded whatever the text
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ids = tokenizer.encode_documents(tok, [text], dtype="uint16")[0]
print(len(text), len(ids), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""
    docs = " ".join(d["text"] for d in DOCS)
    big = tmp_path / "big.txt"
    big.write_text(docs * (4_000_000 // len(docs)))
    tests = str(Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", script, tests, str(big)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": f"{tests}:{Path(tests).parent}"}).stdout.split()
    chars, n_ids, grown = map(int, out)
    assert n_ids > chars / 8
    print(f"\n{chars / 1e6:.0f}M characters: peak memory grew by {grown / chars:.1f} bytes per character")
    assert grown < 8 * chars  # one tokenizer call on the whole text: about 240 bytes per character


def _saved_models(tmp_path, n=3):
    """A seed and n perturbed copies of a tiny Llama, saved as safetensors checkpoints."""
    tok = _tok()
    arch = {"hidden_size": 16, "layers": 1, "heads": 2, "ffn_size": 32, "context": 16, "tie_embeddings": True,
            "init_seed": 0}
    dirs = []
    for i in range(n + 1):
        lm = models.build_llama(arch, tok)
        torch.manual_seed(i)
        with torch.no_grad():
            for p in lm.parameters():
                p.add_(0.1 * i * torch.randn_like(p))
        models.save(lm, tok, tmp_path / f"m{i}", label=f"m{i}")
        dirs.append(tmp_path / f"m{i}")
    return dirs


def test_weighted_merge_and_task_arithmetic_match_a_direct_computation(tmp_path):
    seed_dir, *dirs = _saved_models(tmp_path)
    states = [models.load_causal_lm(d).state_dict() for d in [seed_dir, *dirs]]
    weights = [0.5, 0.3, 0.2]
    target = models.skeleton(seed_dir)
    merging.merge_into(target, dirs, weights)
    for name, value in target.state_dict().items():
        direct = sum(w * s[name] for w, s in zip(weights, states[1:]))
        assert torch.allclose(value, direct, atol=1e-6), name
    method = merging.method({"task_arithmetic": 1.5})
    assert method.label == "task_arithmetic:1.5"
    merging.merge_into(target, dirs, weights, method, seed_dir)
    for name, value in target.state_dict().items():
        seed = states[0][name]
        direct = seed + 1.5 * sum(w * (s[name] - seed) for w, s in zip(weights, states[1:]))
        assert torch.allclose(value, direct, atol=1e-5), name
    merging.merge_into(target, dirs)  # no weights: the uniform average
    for name, value in target.state_dict().items():
        assert torch.allclose(value, sum(s[name] for s in states[1:]) / 3, atol=1e-6), name
    with pytest.raises(merging.MergeError, match="needs the seed"):
        merging.merge_into(target, dirs, weights, method)


def test_resident_pool_builds_every_mixture_as_the_streamed_merge(tmp_path):
    """A batch's mixtures built from the running sum, in update order, equal streamed merges:
    uniform subsets of every size, weighted ones and task arithmetic, one after another."""
    seed_dir, *dirs = _saved_models(tmp_path, 4)
    streamed, resident = models.skeleton(seed_dir), models.skeleton(seed_dir)
    ta = merging.method({"task_arithmetic": 1.5})
    linear = merging.method("linear")
    plans = [([dirs[0]], [1.0], linear, None), (dirs[:2], [0.5, 0.5], linear, None),
             (dirs[:3], [1 / 3] * 3, linear, None), (dirs, [0.25] * 4, linear, None),
             (dirs[1:3], [0.75, 0.25], linear, None), (dirs[1:3], [0.5, 0.5], ta, seed_dir),
             (dirs[:3], [0.2, 0.3, 0.5], ta, seed_dir), (dirs[2:], [0.5, 0.5], linear, None)]
    coefs = [merging.coefficients(dict(zip(map(str, p[0]), p[1])))[0] for p in plans]
    order = merging.update_order(coefs)
    assert sorted(order) == list(range(len(plans)))
    shard_pool = merging.ResidentPool(resident, [*dirs, seed_dir], torch.device("cpu"))
    for i in order:
        shard_pool.build(*plans[i])
        merging.merge_into(streamed, *plans[i])
        for name, value in resident.state_dict().items():
            assert torch.allclose(value, streamed.state_dict()[name], atol=1e-6), (i, name)
    # adding one member to a uniform subset costs one update; in all fewer than re-adding each member
    assert shard_pool.updates < sum(len(p[0]) for p in plans)
    assert merging.update_order([{"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0}, {"a": 1.0, "b": 1.0}]) == [1, 2, 0]


def test_evaluation_windows_never_cross_a_chunk_join():
    # two segments of 10 tokens, context 4: each segment predicts its last 9 tokens once
    spans = perplexity.windows(20, 4, segment=10)
    assert spans == [(0, 4), (4, 4), (8, 1), (10, 4), (14, 4), (18, 1)]
    predicted = [t for s, n in spans for t in range(s + 1, s + n + 1)]
    assert sorted(predicted) == [t for t in range(20) if t % 10 != 0]
    assert perplexity.windows(9, 4) == [(0, 4), (4, 4)]  # one stream: every token after the first
    # a segment shorter than the context, and a short last segment
    assert perplexity.windows(7, 8, segment=3) == [(0, 2), (3, 2)]
    assert perplexity.full_length(8, 3) == 2 and perplexity.full_length(8, None) == 8


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


def test_seed_spans_follow_the_manifest_and_overlap_is_measured(tmp_path):
    from shardmix import seed_data

    manifest = {"shards": {"b": {"seed_tokens": 3, "domain": "x"}, "a": {"seed_tokens": 2}, "c": {"seed_tokens": 4}}}
    # units in name order: a [0, 2), b [2, 5), c [5, 9)
    assert seed_data.spans(manifest, None) == [(0, 9)]
    assert seed_data.spans(manifest, ["a", "c"]) == [(0, 2), (5, 9)]
    assert seed_data.spans(manifest, ["x", "a"]) == [(0, 5)]  # a unit's recorded domain counts
    path = tmp_path / "seed.npy"
    tokens.save(path, np.arange(9, dtype=np.uint16), 100, seal=True)
    assert seed_data.read(path, manifest, ["c"]).tolist() == [5, 6, 7, 8]
    seen = np.array([5, 6, 7, 8, 50, 51, 52, 53])
    share = seed_data.seen_share({"half": seen, "none": np.arange(60, 70)},
                                 seed_data.blocks([(path, manifest, ["c"])]), n=3)
    assert share == {"half": pytest.approx(2 / 6), "none": 0.0}


def test_gradient_search_finds_the_shard_the_target_prefers(tmp_path):
    """Two shard models: one is the seed itself, one the seed perturbed; a target whose data the
    seed fits better must push the weight towards the seed-like shard."""
    seed_dir, noisy, far = _saved_models(tmp_path, 2)
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
