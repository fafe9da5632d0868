"""Growing a finished run: a source added, a source in parts, shards removed."""

from __future__ import annotations

import json
import shutil

import pandas as pd
from helpers import (
    ADDED_SHARD,
    SHARDS,
    copy_project,
    copy_run,
    grown_config,
    planned_jobs,
    snakemake,
    stdlib_documents,
    tiny_config,
    token_sums,
    write_config,
    write_jsonl,
)


def test_adding_a_source_splits_only_it_and_trains_one_model_per_new_shard(grown, pipeline):
    work, jobs, changed = grown
    assert jobs["split_source"] == 1 and jobs["train_shard"] == 1, jobs
    for rule in ("train_seed", "train_tokenizer", "record_foundation", "tokenize_eval_set", "train_full"):
        assert rule not in jobs, rule
    # the new shard's batches (logging + 3 pairs + 3 triples, batch_size 3 -> 3) on both eval-set
    # groups (the old sets; the new held-out set, a group of its own), and the 8 old batches (seed,
    # json, email, http x2, the weighted pair, 2 of really trained mixtures) on the new set only
    assert jobs["evaluate_batch"] == 3 * 2 + 8 and jobs["record_eval_groups"] == 1
    outputs = ("scores.csv", "scores.parquet", "scores.html", "heatmap.png", "ranking.png", "agreement.csv",
               "warnings.txt", "regression.csv", "pairs.csv", "seed_overlap.csv", "agreement.html", "scatter.png", "cost.png", "shards.csv", "run_config.json",
               "calibration.csv", "predictions.csv", "eval_groups.json", "all.json", "json.json", "best_mixtures.csv",
               "weights.png")
    answers = ("summary.csv", "summary.html", "summary.rst")  # and the best mixtures' mergekit configs
    assert all(p.name.removesuffix(".sha256") in outputs + answers or p.parent.name == "mergekit"
               for p in changed), changed  # each with its seal
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




def test_a_single_source_written_as_a_list_changes_nothing(pipeline, tmp_path, data_dir):
    work = copy_run(pipeline, tmp_path / "listed")
    config = grown_config(data_dir)
    config["corpus"] = config["corpus"][:1]
    write_config(work, config)
    proc = snakemake(work, "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_a_changed_source_is_named_with_the_choices_it_leaves(pipeline, tmp_path, data_dir):
    work = copy_run(pipeline, tmp_path / "changed")
    corpus = tmp_path / "moved.jsonl"
    shutil.copy(data_dir / "corpus.jsonl", corpus)  # same bytes, another path and time: not a change
    config = tiny_config(data_dir)
    config["corpus"]["path"] = str(corpus)
    write_config(work, config)
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(snakemake(work, "--dry-run"))

    with open(corpus, "a") as f:
        f.write(json.dumps({"text": "def added(): pass\n", "domain": "json"}) + "\n")
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "corpus source(s) changed after they were split" in text and f"corpus ({corpus})" in text
    assert "add the new text as a new source" in text and "raise that source's `revision`" in text

    config["corpus"]["revision"] = 1  # rebuild on purpose: a foundation source, so everything
    write_config(work, config)
    # the split is a checkpoint: the seed and the shard models follow once it has run (mtime)
    assert planned_jobs(snakemake(work, "--dry-run")) == {"train_tokenizer": 1, "split_source": 1, "all": 1}


def test_removing_a_scored_shard_says_what_is_scored_again(pipeline, tmp_path, data_dir):
    work = copy_run(pipeline, tmp_path / "removed")
    config = tiny_config(data_dir)
    config["sharding"]["include"].remove("http")
    config["mixtures"]["weighted"] = []
    config["validation"]["explicit"] = [["json", "email"]]
    write_config(work, config)
    proc = snakemake(work, "--dry-run")
    assert "WARNING: shard(s) or eval set(s) http left the run after they were scored" in proc.stderr, proc.stderr
    assert "Only time is spent: a mixture's scores do not change" in proc.stderr




def test_a_source_in_parts_runs_one_job_per_part_and_matches_a_single_job(tmp_path):
    data = tmp_path / "data"
    for pkg in SHARDS:
        write_jsonl(data / "corpus" / f"{pkg}.jsonl", stdlib_documents(pkg))
    write_jsonl(data / "extra.jsonl", stdlib_documents("urllib", 12_000))
    runs = {}
    for label, part_mb in (("parts", 0.02), ("one", 256)):
        work = copy_project(tmp_path / label)
        config = tiny_config(data)
        config["corpus"]["path"] = str(data / "corpus")
        config["runtime"] = {"split_part_mb": part_mb}
        write_config(work, config)
        target = "results/corpus/corpus/manifest.json"
        jobs = planned_jobs(snakemake(work, "--dry-run", target))
        snakemake(work, target)
        runs[label] = (jobs, token_sums(work / "results/corpus/corpus/tokens"))
        assert not (work / "results/corpus/corpus/parts").exists() or \
            not any((work / "results/corpus/corpus/parts").iterdir())  # temporary
        config["runtime"]["split_part_mb"] = 0.01  # another part size: the split stands
        write_config(work, config)
        assert planned_jobs(snakemake(work, "--dry-run", target)) == {}
        if label == "parts":  # a forced re-split reads the recorded parts again
            forced = planned_jobs(snakemake(work, "--dry-run", target, "--forcerun", "split_source"))
            assert forced == {"split_source": 1, "split_part": jobs["split_part"]}
            snakemake(work, target, "--forcerun", "split_source")
            assert token_sums(work / "results/corpus/corpus/tokens") == runs[label][1]
    assert runs["parts"][0].get("split_part", 0) >= 3 and "split_part" not in runs["one"][0]
    assert runs["parts"][1] == runs["one"][1]
