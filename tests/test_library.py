"""The shardmix package on small real data: readers, sharding, mixtures, training."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch
from conftest import stdlib_documents, write_jsonl
from test_bad_input import _tok

from shardmix import mixtures, sharding, training
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
    assert len(allpairs) == 6 + 1 and ("a", "c", "d") in allpairs
    sampled = mixtures.candidate_mixtures(shards, {"max_size": 1, "random": {"fraction": 0.5, "sizes": [2, 3], "seed": 3}})
    assert 0 < len(sampled) < 10 and all(len(m) in (2, 3) for m in sampled)
    with pytest.raises(mixtures.MixtureError, match=r"mixtures.explicit\[0\] names shard 'z'"):
        mixtures.candidate_mixtures(shards, {"max_size": 2, "explicit": [["a", "z"]]})


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
    before = mixtures.validation_sample(mixtures.candidate_mixtures(six[:4], {"max_size": 3}), spec)
    record = {"random": spec, "picks": [list(m) for m in before]}
    grown = mixtures.candidate_mixtures(six, {"max_size": 3})
    assert mixtures.validation_sample(grown, spec, record) == before
    # without the record, the lowest draws over all mixtures move picks; a new spec draws afresh
    assert mixtures.validation_sample(grown, spec) != before
    assert len(mixtures.validation_sample(grown, {**spec, "count": 6}, record)) == 6
    assert set(before) < set(mixtures.validation_sample(grown, {**spec, "count": 6}, record))
    assert mixtures.validation_sample(grown, {**spec, "seed": 1}, record) == \
        mixtures.validation_sample(grown, {**spec, "seed": 1})


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
    assert (tmp_path / "resume/state.pt").exists()
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
