"""Data selection toward a target: the methods on embeddings with a known answer, the candidate
units and the overlap check, and a selection added to a finished run (one training per selection)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import planned_jobs, ran_jobs, snakemake, stdlib_documents, tiny_config, write_config, write_jsonl
from shardmix import candidates, overlap, selection
from shardmix.corpus import Document

OT = {"reg": 0.05, "chunk": 400, "max_target": 2000, "max_iter": 2000}
CPU = torch.device("cpu")


def _clusters(spec, rng, d=32, noise=0.1):
    centres = {k: v / np.linalg.norm(v) for k, v in zip("ABC", rng.normal(size=(3, d)))}
    points, labels = [], []
    for name, n in spec:
        x = centres[name] + noise * rng.normal(size=(n, d))
        points.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        labels += [name] * n
    return np.vstack(points), np.array(labels)


def test_gotd_fills_what_the_pool_lacks_where_nearest_follows_the_majority():
    """Target: half A, half B. Pool: mostly A, a little B, some C. Moving the pool toward the
    target needs B, which GOT-D's calibrated gradient ranks first; the nearest-to-the-mean
    baseline takes the abundant A. Added to the pool, GOT-D's choice brings it closest to the
    target (what GOT-D optimises: the data a model has seen, plus the new data)."""
    rng = np.random.default_rng(0)
    pool, labels = _clusters([("A", 800), ("B", 100), ("C", 100)], rng)
    target, _ = _clusters([("A", 100), ("B", 100)], np.random.default_rng(0))
    eligible = np.ones(len(pool), dtype=bool)
    picked, distance = {}, {}
    for method in selection.METHODS:
        chosen, info = selection.select(method, pool, target, eligible, 100, OT, 0, "t", CPU)
        assert len(set(chosen)) == 100
        picked[method] = labels[chosen]
        distance[method] = selection.ot_distance(np.vstack([pool, pool[chosen]]), target, OT, 0,
                                                 info["cost_scale"], CPU)
    assert (picked["gotd"] == "B").sum() >= 90
    assert (picked["nearest"] == "B").sum() < 60
    assert distance["gotd"] < distance["nearest"] and distance["gotd"] < distance["random"]


def test_gotd_scores_do_not_depend_on_how_the_pool_is_chunked():
    rng = np.random.default_rng(1)
    pool, _ = _clusters([("A", 300), ("B", 150), ("C", 150)], rng)
    target, _ = _clusters([("B", 80)], np.random.default_rng(1))
    scale = selection.cost_scale(pool, target, 0)
    whole, _ = selection.gotd_scores(pool, target, {**OT, "chunk": 10_000}, 0, scale, CPU)
    chunked, info = selection.gotd_scores(pool, target, {**OT, "chunk": 200}, 0, scale, CPU)
    assert info["chunks"] == 3
    assert np.corrcoef(whole, chunked)[0, 1] > 0.95


def test_excluded_candidates_are_never_picked():
    rng = np.random.default_rng(2)
    pool, labels = _clusters([("A", 50), ("B", 50)], rng)
    target, _ = _clusters([("B", 40)], np.random.default_rng(2))
    eligible = labels == "A"
    for method in selection.METHODS:
        chosen, _ = selection.select(method, pool, target, eligible, 20, OT, 0, "t", CPU)
        assert set(labels[chosen]) == {"A"}


class _Tok:
    """Whitespace tokenizer with the interface encode_documents uses."""
    eos_token_id = 0

    def __len__(self):
        return 100

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[int(w) for w in t.split()] for t in texts]}


def test_units_cut_long_documents_and_group_short_ones():
    docs = [Document(" ".join(["5"] * 9), {"id": "long"}), Document("6 6", {"title": "short"}),
            Document("7 7 7", {}, "pool.jsonl:3"), Document("", {"id": "empty"})]
    built = candidates.build_units(docs, _Tok(), 4)
    # stream: 5 x9, eos, 6 6, eos, 7 7 7, eos = 17 tokens -> 4 units, the tail of 1 dropped
    assert built["units"].shape == (4, 4)
    assert built["units"][2].tolist() == [5, 0, 6, 6]
    assert built["doc_ids"] == ["long", "short", "pool.jsonl:3"]
    assert list(built["first_doc"]) == [0, 0, 0, 1] and list(built["last_doc"]) == [0, 0, 1, 2]


def test_a_unit_repeating_a_protected_span_is_excluded():
    rng = np.random.default_rng(3)
    heldout = rng.integers(1, 5000, size=400)
    units = rng.integers(1, 5000, size=(6, 64))
    units[1, 10:42] = heldout[100:132]   # a 32-token span of the held-out text
    units[4, 30:60] = heldout[200:230]   # only 30 tokens: not a repeat at n = 32
    protected = overlap.protected_hashes([heldout, rng.integers(1, 5000, size=10)], 32)
    assert overlap.overlapping(units, protected, 32).tolist() == [False, True, False, False, False, False]


# --- a selection added to a finished run ------------------------------------------------------------


def _selection_config(data_dir, targets):
    config = tiny_config(data_dir)
    config["selection"] = {"pool": {"path": str(data_dir / "pool.jsonl"), "field": "domain",
                                    "values": ["xml", "urllib"]},
                           "targets": targets, "unit_tokens": 32, "embedding": {"batch_size": 64}}
    return config


@pytest.fixture(scope="module")
def selected(pipeline, tmp_path_factory, data_dir):
    """The finished tiny run with a selection added (pool: xml and urllib sources; the urllib
    documents repeat the extra eval set's text, so some candidates must be excluded)."""
    write_jsonl(data_dir / "pool.jsonl", [*stdlib_documents("xml", 30_000), *stdlib_documents("urllib", 20_000),
                                          *stdlib_documents("json", 5_000)])
    work = tmp_path_factory.mktemp("selected") / "project"
    shutil.copytree(pipeline, work, symlinks=True)
    write_config(work, _selection_config(data_dir, [{"name": "extra_urllib"}]))
    jobs = ran_jobs(snakemake(work))
    return work, jobs


def test_adding_a_selection_trains_one_model_per_method_and_scores_only_new_batches(selected):
    work, jobs = selected
    assert jobs.get("train_shard") == 3 and jobs.get("select_shard") == 3
    assert jobs.get("selection_pool") == 1 and jobs.get("selection_embed") == 1
    for rule in ("train_seed", "split_source", "train_full", "train_tokenizer"):
        assert rule not in jobs, rule
    # only the selections' batches (5 models each, batch_size 3: 2 batches), on the run's one eval-set group
    assert jobs.get("evaluate_batch") == 3 * 2
    assert "Nothing to be done" in (snakemake(work, "-n").stdout + snakemake(work, "-n").stderr)


def test_selection_summary_and_provenance(selected, data_dir):
    work, _ = selected
    summary = pd.read_csv(work / "results/selection/summary.csv")
    assert list(summary.columns) == ["target", "method", "shard", "seed_ppl", "shard_ppl", "best_mixture",
                                     "best_mixture_ppl", "ot_distance", "embed_seconds", "ot_seconds"]
    assert sorted(summary["shard"]) == ["gotd-extra_urllib", "nearest-extra_urllib", "random-extra_urllib"]
    assert (summary["best_mixture_ppl"] <= summary["shard_ppl"]).all()
    assert (summary.set_index("method")["ot_seconds"].drop("gotd") == 0).all()
    assert (work / "results/selection/extra_urllib.png").stat().st_size > 10_000
    scores = pd.read_csv(work / "results/scores.csv", keep_default_na=False)
    for shard in summary["shard"]:
        held = scores[scores["shards"].str.split("+").map(lambda m: shard in m)]
        # alone, paired with each of the 3 run shards, added to all of them; on every eval set
        assert held["shards"].nunique() == 1 + 3 + 1
        prov = json.loads((work / f"results/selection/shards/{shard}/provenance.json").read_text())
        assert prov["tokens"] == 2048 and prov["target"] == "extra_urllib"
        assert prov["excluded_overlap"] > 0  # the pool's urllib documents are the eval set's text
        assert prov["documents"] and all(d.startswith(str(data_dir / "pool.jsonl")) for d in prov["documents"])
        train = np.load(work / f"results/selection/shards/{shard}/train.npy")
        assert len(train) == 2048


def test_a_new_target_reuses_the_pool_embeddings(selected, tmp_path, data_dir):
    work, _ = selected
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    write_config(copy, _selection_config(data_dir, [{"name": "extra_urllib"}, {"name": "json"}]))
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["selection"]["methods"] = ["gotd"]
    write_config(copy, config)
    jobs = planned_jobs(snakemake(copy, "--dry-run"))  # no checkpoint downstream: the plan is the whole run
    assert jobs.get("select_shard") == 1 and jobs.get("train_shard") == 1
    assert "selection_embed" not in jobs and "selection_pool" not in jobs


# --- bad input: each names its key, and nothing already computed is lost ---------------------------


def _config_error(config):
    from shardmix import config as shardmix_config

    with pytest.raises(shardmix_config.ConfigError) as err:
        shardmix_config.check(config, source="my.yaml")
    return str(err.value)


def test_selection_config_errors_name_the_key(data_dir):
    config = _selection_config(data_dir, [{"name": "extra_urllib"}])
    config["selection"]["tokens"] = 100
    assert "key 'selection.tokens': 100 is less than the shard budget" in _config_error(config)
    config = _selection_config(data_dir, [{"name": "extra_urllib"}, {"name": "extra_urllib"}])
    assert "key 'selection.targets[1].name'" in _config_error(config)
    config = _selection_config(data_dir, [{"name": "mine", "path": str(data_dir / "extra.jsonl")}])
    from shardmix import config as shardmix_config

    assert "mine" in [e["name"] for e in shardmix_config.check(config)["eval_sets"]]


def _dry_run_error(work, config):
    write_config(work, config)
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("change, expected", [
    (lambda c, d: c["selection"]["pool"].update(path=str(d / "nowhere.jsonl")),
     "selection.pool.path: {d}/nowhere.jsonl does not exist"),
    (lambda c, d: c["selection"].update(targets=[{"name": "poetry"}]),
     "selection.targets[0].name: 'poetry' is neither an eval set of this run nor given a path"),
    (lambda c, d: c["selection"]["embedding"].update(model=str(d)),
     "selection.embedding.model: {d} is not a Hugging Face model folder"),
])
def test_bad_selection_input_is_named_before_any_job(selected, tmp_path, data_dir, change, expected):
    work, _ = selected
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    shutil.rmtree(copy / "results/selection/pool")
    config = _selection_config(data_dir, [{"name": "extra_urllib"}])
    change(config, data_dir)
    assert expected.format(d=data_dir) in _dry_run_error(copy, config)


def test_an_encoder_folder_holding_a_causal_lm_is_refused(selected, tmp_path, data_dir):
    work, _ = selected
    config = _selection_config(data_dir, [{"name": "extra_urllib"}])
    config["selection"]["embedding"]["model"] = str(work / "results/models/seed")
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    assert "holds a causal language model (llama), not an encoder" in _dry_run_error(copy, config)


def test_a_selection_larger_than_the_pool_fails_naming_the_key_and_keeps_the_rest(selected, tmp_path, data_dir):
    work, _ = selected
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    config = _selection_config(data_dir, [{"name": "json"}])
    config["selection"]["tokens"] = 10_000_000
    write_config(copy, config)
    proc = snakemake(copy, "--keep-going", check=False)
    assert proc.returncode != 0
    log = "".join(p.read_text() for p in (copy / "logs/selection").glob("*-json.log"))
    assert "selection.tokens: 10000000 tokens" in log and "is more than the pool offers" in log
    assert (copy / "results/selection/shards/gotd-extra_urllib/train.npy").exists()
    assert (copy / "results/models/shards/json").exists()
