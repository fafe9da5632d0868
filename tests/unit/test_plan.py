"""Unit tests of shardmix.plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shardmix import atomic, config, perplexity, tokens
from shardmix.plan import PlanError, Planner

DOMAINS = {"news": 3, "code": 2, "law": 1}  # field_units: base units per domain


def _manifest(units: dict) -> dict:
    shards = {}
    for domain, n in units.items():
        for j in range(n):
            name = f"{domain}-{j:03d}" if n > 1 else domain
            shards[name] = {"train_tokens": 5000, "heldout_tokens": 900, "seed_tokens": 800, "documents": 3,
                            "domain": domain}
    return {"shards": shards, "seed_tokens": 800 * len(shards), "vocab_size": 512, "total_tokens": 10 ** 5,
            "source": "corpus", "path": "corpus.jsonl", "revision": 0, "fingerprint": "x", "checksum": "y"}


def _config(**evaluation) -> dict:
    return config.check({
        "corpus": {"path": "corpus.jsonl", "sharding": {"method": "field_units", "field": "domain",
                                                         "unit_tokens": 4000, "chunk_tokens": 64}},
        "eval_sets": [{"name": "extra", "path": "extra.jsonl"}],
        "tokenizer": {"vocab_size": 512},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32},
        "shard_training": {"tokens": 2048}, "mixtures": {"max_size": 2, "batch_size": 4},
        "validation": {"explicit": [{"news-000": 0.75, "code-001": 0.25}]}, "search": {"targets": []},
        "evaluation": {"max_tokens": 1024, "min_tokens": 256, **evaluation},
    })


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A working directory whose only source is split (its manifest, sealed)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "extra.jsonl").write_text('{"text": "x"}\n')
    atomic.write_text("results/corpus/corpus/manifest.json", json.dumps(_manifest(DOMAINS)), seal=True)
    return tmp_path


def test_shards_and_the_eval_sets_each_choice_makes(run_dir):
    plan = Planner(_config())
    assert list(plan.shard_sources()) == ["code-000", "code-001", "law", "news-000", "news-001", "news-002"]
    assert list(plan.eval_sets()) == [*plan.shard_sources(), "extra"]  # every shard's held-out set
    domains = Planner(_config(heldout_sets="domains"))
    assert domains.eval_sets() == {
        "code": ["results/corpus/corpus/tokens/code-000.heldout.npy", "results/corpus/corpus/tokens/code-001.heldout.npy"],
        "law": "results/corpus/corpus/tokens/law.heldout.npy",
        "news": [f"results/corpus/corpus/tokens/news-00{i}.heldout.npy" for i in range(3)],
        "extra": "results/eval_sets/extra.npy"}
    assert domains.eval_set_spec("news")["segment"] == 64
    assert domains.eval_set_inputs(["news", "extra"]) == ["results/corpus/corpus/manifest.json",
                                                         "results/eval_sets/extra.npy"]
    assert list(Planner(_config(heldout_sets="none")).eval_sets()) == ["extra"]
    assert list(Planner(_config(heldout_sets=["news", "law"])).eval_sets()) == ["news", "law", "extra"]
    with pytest.raises(PlanError, match=r"heldout_sets\[0\]: 'sports' is neither a shard nor a domain"):
        Planner(_config(heldout_sets=["sports"])).eval_sets()


def test_scoring_nothing_is_an_error(run_dir):
    cfg = _config(heldout_sets="none")
    cfg["eval_sets"] = []
    with pytest.raises(PlanError, match="nothing to score on"):
        Planner(cfg).eval_groups()


def test_evaluation_arguments_are_pinned_byte_for_byte(run_dir):
    """The arguments of one evaluation job, written out by hand: a change here reruns every
    evaluation of every existing results folder."""
    plan = Planner(_config(heldout_sets=["law"]))
    assert list(plan.eval_groups()) == ["g0"]
    batch = next(b for b, entries in plan.batches().items() if any(e.kind == "merged" for e in entries))
    entries = plan.batches()[batch]
    expected = {
        "models": [{"model": e.model, "kind": e.kind, "shards": e.shards, "weights": e.weights, "method": e.method,
                    "dirs": e.dirs, **({"merge": {"weights": e.merge.weights, "method": e.merge.method,
                                                  "seed": e.merge.seed}} if e.merge else {})} for e in entries],
        "eval_sets": {"law": {"path": "results/corpus/corpus/tokens/law.heldout.npy", "segment": 64},
                      "extra": {"path": "results/eval_sets/extra.npy", "segment": None}},
        "tokenizer": "results/tokenizer", "max_tokens": 1024, "min_tokens": 256, "batch_windows": 16,
        "context": 32, "out": f"results/scores/g0/{batch}.csv"}
    assert plan.eval_args("g0", batch) == json.dumps(expected, sort_keys=True)
    merged = next(e for e in entries if e.kind == "merged")
    assert merged.args()["merge"] == {"weights": [0.5, 0.5], "method": {"name": "linear", "label": "linear", "params": {}},
                                      "seed": None}
    assert merged.model == f"merged/{merged.shards}"
    assert plan.eval_inputs("g0", batch)["data"] == ["results/corpus/corpus/manifest.json",
                                                    "results/eval_sets/extra.npy"]


def test_training_arguments(run_dir):
    plan = Planner(_config())
    assert plan.shard_training("law").args() == {
        "seed": "results/models/seed", "sources": ["results/corpus/corpus/tokens/law.train.npy"],
        "training": plan.settings("shard_training"), "context": 32, "out": "results/models/shards/law",
        "label": "law"}
    weighted = plan.full_training("code-001@0.25+news-000@0.75").args()
    assert weighted["budgets"] == [1024, 3072]  # 2 members: 2 budgets in all, split by weight
    assert weighted["sources"] == ["results/corpus/corpus/tokens/code-001.train.npy",
                                   "results/corpus/corpus/tokens/news-000.train.npy"]
    assert "budgets" not in plan.full_training("code-001+news-000").args()


def test_planning_derives_once_per_manifest_version(run_dir):
    """Asking per job costs a stat per source: everything else is derived once, and a group's
    eval-set table is serialized once for all its batches."""
    plan = Planner(_config())
    view = plan.view()
    first = [plan.eval_args("g0", b) for b in plan.batches()]
    assert plan.view() is view
    assert len({id(view.group_specs("g0")) for _ in plan.batches()}) == 1
    # the seed; per newest shard, its model and pairs in batches of 4; the weighted mixture; its full model
    assert list(plan.batches()) == ["seed", "code-000.000", "code-001.000", "law.000", "news-000.000", "news-001.000",
                                    "news-001.001", "news-002.000", "news-002.001", "news-000.w000",
                                    "full@news-000.000"]
    # the run records its groups; then a domain is added (its name sorts last, as shards of one source are ordered by name)
    atomic.write_text("results/scores/eval_groups.json", json.dumps({"groups": list(plan.eval_groups().values())}),
                      seal=True)
    atomic.write_text("results/corpus/corpus/manifest.json", json.dumps(_manifest({**DOMAINS, "zoo": 2})), seal=True)
    assert plan.view() is not view and "zoo-001" in plan.shard_sources()
    # the next run: the jobs that ran keep their arguments; the new shards form group g1
    grown = Planner(_config())
    assert {b: grown.eval_args("g0", b) for b in view.plan[0]} == dict(zip(view.plan[0], first))
    assert grown.eval_groups()["g1"] == ["zoo-000", "zoo-001"]


def test_recorded_groups_are_kept(run_dir):
    atomic.write_text("results/scores/eval_groups.json", json.dumps({"groups": [["law", "extra"]]}), seal=True)
    groups = Planner(_config()).eval_groups()
    assert groups == {"g0": ["law", "extra"], "g1": ["code-000", "code-001", "news-000", "news-001", "news-002"]}


def test_a_damaged_manifest_is_named(run_dir):
    path = run_dir / "results/corpus/corpus/manifest.json"
    path.write_text(path.read_text().replace("news", "nevs"))
    with pytest.raises(PlanError, match="manifest.json: damaged .*Delete results/corpus/corpus and rerun"):
        Planner(_config()).shard_sources()


def test_a_domain_set_reads_an_equal_share_of_whole_segments(tmp_path):
    files = []
    for i, n in enumerate((70, 40, 200)):  # held-out files of 2, 1 and 6 whole 32-token segments (and a rest)
        files.append(str(tmp_path / f"u{i}.npy"))
        tokens.save(files[-1], np.full(n, i, dtype=np.int64), 10)
    whole = perplexity.load_set({"paths": files, "segment": 32}, None)
    assert list(np.bincount(whole.ids)) == [64, 32, 192]
    capped = perplexity.load_set({"paths": files, "segment": 32}, 96)
    assert list(np.bincount(capped.ids)) == [32, 32, 32]
