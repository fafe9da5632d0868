"""Planning at scale: `snakemake -n` over every subset of 16 and of 17 shards (time, peak RSS,
jobs), and what adding the 17th shard to a finished 16-shard run plans.

The corpus is split for real (tokenizer, splits: a dry run cannot see past those checkpoints).
What adding a shard plans is measured on a finished run of every pair of 16 shards, run for real
with a tiny model (every subset of 16 would take hours to score).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import kit


def _config(data: Path, shards: list[str], added: str | None) -> dict:
    corpus = [{"name": "corpus", "path": str(data / "corpus.jsonl"), "sharding": {"include": shards}}]
    if added:
        corpus.append({"name": "more", "path": str(data / "more.jsonl"), "sharding": {"include": [added]}})
    return {
        "corpus": corpus,
        "sharding": {"method": "field", "field": "domain", "chunk_tokens": 64, "heldout_fraction": 0.2,
                     "seed_fraction": 0.3},
        "eval_sets": [], "tokenizer": {"vocab_size": 512},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32},
        "seed_training": {"tokens": 8192, "batch_size": 8}, "shard_training": {"tokens": 2048, "batch_size": 8},
        "mixtures": {"max_size": 17}, "validation": {}, "search": {"targets": []},
        "evaluation": {"max_tokens": 1024, "min_tokens": 256},
    }


def _manifests(config: dict) -> list[str]:
    """Every source's split, asked for by name (rule all asks for one source's at a time)."""
    return [f"results/corpus/{source['name']}/manifest.json" for source in config["corpus"]]


def run(workdir: Path) -> dict:
    packages = kit.SHARD_PACKAGES
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, members in (("corpus", packages[:16]), ("more", packages[16:])):
        with open(data / f"{name}.jsonl", "w") as f:
            for p in members:
                for text in kit.documents(p, 30_000):
                    f.write(json.dumps({"text": text, "domain": p}) + "\n")
    sixteen = _config(data, packages[:16], None)
    seventeen = _config(data, packages[:16], packages[16])
    out = {}
    # from scratch: the splits for real (checkpoints: a dry run cannot see past them), then a dry run
    for name, config in (("16 shards", sixteen), ("17 shards", seventeen)):
        work = workdir / name.replace(" ", "_")
        work.mkdir(parents=True, exist_ok=True)
        kit.snakemake(work, config, *_manifests(config))
        r = kit.snakemake(work, config, "-n", "--quiet", "rules")
        jobs = kit.planned_jobs(r["out"])
        out[name] = {"mixtures": 2 ** int(name.split()[0]) - 1, "seconds": round(r["seconds"], 2),
                     "peak_rss_mib": round(r["rss"]), "jobs": sum(jobs.values()),
                     "evaluation_jobs": jobs.get("evaluate_batch", 0)}
        out[name]["ms_per_job"] = round(1000 * out[name]["seconds"] / out[name]["jobs"], 2)
    # a finished 16-shard run (every pair: a real run, so small), then a 17th shard added as a new
    # source: what the dry run plans
    work = workdir / "grown"
    work.mkdir(parents=True, exist_ok=True)
    pairs = {name: {**c, "mixtures": {"max_size": 2}} for name, c in (("16", sixteen), ("17", seventeen))}
    kit.snakemake(work, pairs["16"], *_manifests(pairs["16"]))
    kit.snakemake(work, pairs["16"])
    kit.snakemake(work, pairs["17"], *_manifests(pairs["17"]))
    r = kit.snakemake(work, pairs["17"], "-n", "--quiet", "rules")
    out["adding the 17th shard"] = {"mixtures before": 136, "mixtures after": 153, "seconds": round(r["seconds"], 2),
                                    "planned": kit.planned_jobs(r["out"])}
    return out
