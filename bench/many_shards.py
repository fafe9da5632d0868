"""Planning many shards: `snakemake -n` over every pair of 64, 256 and 1,024 shards (CPU
seconds, peak RSS, jobs), each shard a base unit (`field_units`) of one of eight domains of
real text (Python's standard library, one package per domain).

One corpus is split for real once (a dry run cannot see past the split checkpoint); the three
sizes differ only in `sharding.include`, which picks among the split's units without a re-split.
    python bench/many_shards.py [--sizes 64,256,1024] [--eval-sets shards] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import kit  # noqa: E402

DOMAINS = ["unittest", "test", "idlelib", "encodings", "distutils", "pydoc_data", "tkinter", "lib2to3"]
UNIT_TOKENS = 1000
# CPU (user + system) and peak RSS of the child: the machine is shared, so CPU, not wall time
WRAP = ("import resource, subprocess, sys, json; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout + p.stderr, 'cpu': u.ru_utime + u.ru_stime, "
        "'rss': u.ru_maxrss / 1024}))")


def config(data: Path, include: list[str] | None, eval_sets="shards") -> dict:
    return {
        "corpus": {"path": str(data / "corpus.jsonl"),
                   "sharding": {"method": "field_units", "field": "domain", "unit_tokens": UNIT_TOKENS,
                                "chunk_tokens": 32, "heldout_fraction": 0.2, "seed_fraction": 0.1,
                                "include": include}},
        "eval_sets": [], "tokenizer": {"vocab_size": 512},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32},
        "seed_training": {"tokens": 8192, "batch_size": 8}, "shard_training": {"tokens": 256, "batch_size": 8},
        "mixtures": {"max_size": 2}, "validation": {}, "search": {"targets": []},
        "evaluation": {"max_tokens": 512, "min_tokens": 64,
                       **({} if eval_sets == "shards" else {"heldout_sets": eval_sets})},
    }


def snakemake(work: Path, cfg: dict, *args: str) -> dict:
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(kit.ROOT / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", "2", *args]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result["rc"]:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result['out'][-4000:]}")
    result["seconds"] = time.perf_counter() - start
    return result


def jobs(text: str) -> dict[str, int]:
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def write_corpus(data: Path, chars: int = 500_000) -> None:
    data.mkdir(parents=True, exist_ok=True)
    path = data / "corpus.jsonl"
    if path.exists():
        return
    with open(path, "w") as f:
        for domain in DOMAINS:
            for text in kit.documents(domain, chars):
                f.write(json.dumps({"text": text, "domain": domain}) + "\n")


def units(n: int, available: list[str]) -> list[str]:
    """n base units, as even over the domains as their sizes allow (round robin)."""
    by_domain = {d: sorted(u for u in available if u.rsplit("-", 1)[0] == d) for d in DOMAINS}
    out, i = [], 0
    while len(out) < n:
        for d in DOMAINS:
            if i < len(by_domain[d]) and len(out) < n:
                out.append(by_domain[d][i])
        i += 1
        if i > max(map(len, by_domain.values())):
            raise RuntimeError(f"the corpus has only {len(out)} units")
    return out


def split(work: Path) -> list[str]:
    """Split the corpus once (every unit); the units large enough for the config's budgets."""
    work.mkdir(parents=True, exist_ok=True)
    write_corpus(work / "data")
    manifest = work / "results/corpus/corpus/manifest.json"
    if not manifest.exists():
        snakemake(work, config(work / "data", None), "results/corpus/corpus/manifest.json")
    shards = json.loads(manifest.read_text())["shards"]
    return [name for name, info in shards.items() if info["heldout_tokens"] >= 64 and info["train_tokens"] > 256]


def run(workdir: Path, sizes=(64, 256, 1024), eval_sets="shards") -> dict:
    available = split(workdir)
    out = {}
    for n in sizes:
        cfg = config(workdir / "data", units(n, available), eval_sets)
        r = snakemake(workdir, cfg, "-n", "--quiet", "rules")
        planned = jobs(r["out"])
        total = sum(planned.values())
        out[f"{n} shards"] = {"mixtures": n * (n + 1) // 2, "eval_sets": eval_sets, "jobs": total,
                              "evaluation_jobs": planned.get("evaluate_batch", 0),
                              "cpu_seconds": round(r["cpu"], 2), "ms_cpu_per_job": round(1000 * r["cpu"] / total, 2),
                              "wall_seconds": round(r["seconds"], 2), "peak_rss_mib": round(r["rss"])}
        print(f"{n} shards: {json.dumps(out[f'{n} shards'])}", flush=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--eval-sets", default="shards")
    parser.add_argument("--work")
    a = parser.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="many-shards-"))
    print(json.dumps(run(work, [int(s) for s in a.sizes.split(",")], a.eval_sets), indent=2))
