"""Planning at scale: `snakemake -n` over every subset of 16 and of 17 shards (time, peak RSS,
jobs), and what adding the 17th shard to a finished 16-shard run plans.

The corpus is split for real (tokenizer, splits: a dry run cannot see past those checkpoints).
What adding a shard plans is measured on a finished run of every pair of 16 shards, run for real
with a tiny model (every subset of 16 would take hours to score).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench import kit

WRAP = ("import resource, subprocess, sys, json; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout + p.stderr, "
        "'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")


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


def _snakemake(work: Path, config: dict, *args: str) -> dict:
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(kit.ROOT / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", "2", *args]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result["rc"]:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result['out'][-4000:]}")
    result["seconds"] = time.perf_counter() - start
    return result


def _manifests(config: dict) -> list[str]:
    """Every source's split, asked for by name (rule all asks for one source's at a time)."""
    return [f"results/corpus/{source['name']}/manifest.json" for source in config["corpus"]]


def _jobs(text: str) -> dict[str, int]:
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


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
        _snakemake(work, config, *_manifests(config))
        r = _snakemake(work, config, "-n", "--quiet", "rules")
        jobs = _jobs(r["out"])
        out[name] = {"mixtures": 2 ** int(name.split()[0]) - 1, "seconds": round(r["seconds"], 2),
                     "peak_rss_mib": round(r["rss"]), "jobs": sum(jobs.values()),
                     "evaluation_jobs": jobs.get("evaluate_batch", 0)}
        out[name]["ms_per_job"] = round(1000 * out[name]["seconds"] / out[name]["jobs"], 2)
    # a finished 16-shard run (every pair: a real run, so small), then a 17th shard added as a new
    # source: what the dry run plans
    work = workdir / "grown"
    work.mkdir(parents=True, exist_ok=True)
    pairs = {name: {**c, "mixtures": {"max_size": 2}} for name, c in (("16", sixteen), ("17", seventeen))}
    _snakemake(work, pairs["16"], *_manifests(pairs["16"]))
    _snakemake(work, pairs["16"])
    _snakemake(work, pairs["17"], *_manifests(pairs["17"]))
    r = _snakemake(work, pairs["17"], "-n", "--quiet", "rules")
    out["adding the 17th shard"] = {"mixtures before": 136, "mixtures after": 153, "seconds": round(r["seconds"], 2),
                                    "planned": _jobs(r["out"])}
    return out
