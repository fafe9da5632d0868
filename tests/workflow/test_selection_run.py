"""GOT-D selection added to a finished run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import planned_jobs, ran_jobs, selection_config, snakemake, stdlib_documents, write_config, write_jsonl


@pytest.fixture(scope="module")
def selected(pipeline, tmp_path_factory, data_dir):
    """The finished tiny run with a selection added (pool: xml and urllib sources; the urllib
    documents repeat the extra eval set's text, so some candidates must be excluded)."""
    write_jsonl(data_dir / "pool.jsonl", [*stdlib_documents("xml", 30_000), *stdlib_documents("urllib", 20_000),
                                          *stdlib_documents("json", 5_000)])
    work = tmp_path_factory.mktemp("selected") / "project"
    shutil.copytree(pipeline, work, symlinks=True)
    write_config(work, selection_config(data_dir, [{"name": "extra_urllib"}]))
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
    write_config(copy, selection_config(data_dir, [{"name": "extra_urllib"}, {"name": "json"}]))
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["selection"]["methods"] = ["gotd"]
    write_config(copy, config)
    jobs = planned_jobs(snakemake(copy, "--dry-run"))  # no checkpoint downstream: the plan is the whole run
    assert jobs.get("select_shard") == 1 and jobs.get("train_shard") == 1
    assert "selection_embed" not in jobs and "selection_pool" not in jobs


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
    config = selection_config(data_dir, [{"name": "extra_urllib"}])
    change(config, data_dir)
    assert expected.format(d=data_dir) in _dry_run_error(copy, config)


def test_an_encoder_folder_holding_a_causal_lm_is_refused(selected, tmp_path, data_dir):
    work, _ = selected
    config = selection_config(data_dir, [{"name": "extra_urllib"}])
    config["selection"]["embedding"]["model"] = str(work / "results/models/seed")
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    assert "holds a causal language model (llama), not an encoder" in _dry_run_error(copy, config)


def test_a_selection_larger_than_the_pool_fails_naming_the_key_and_keeps_the_rest(selected, tmp_path, data_dir):
    work, _ = selected
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    config = selection_config(data_dir, [{"name": "json"}])
    config["selection"]["tokens"] = 10_000_000
    write_config(copy, config)
    proc = snakemake(copy, "--keep-going", check=False)
    assert proc.returncode != 0
    log = "".join(p.read_text() for p in (copy / "logs/selection").glob("*-json.log"))
    assert "selection.tokens: 10000000 tokens" in log and "is more than the pool offers" in log
    assert (copy / "results/selection/shards/gotd-extra_urllib/train.npy").exists()
    assert (copy / "results/models/shards/json").exists()
