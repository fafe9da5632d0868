"""Many shards: `snakemake -n` over every pair of 64, 256 and 1,024 shards (CPU seconds, peak
RSS, jobs), and with --run a real run of every pair of 64 shards to its report (wall time, jobs,
peak memory per rule, scoring throughput, the share of CPU spent starting jobs). Each shard is a
base unit (`field_units`) of one of eight domains of real text (Python's standard library, one
package per domain), scored with a tiny model.

One corpus is split for real once (a dry run cannot see past the split checkpoint); the sizes
differ only in `sharding.include`, which picks among the split's units without a re-split.
    python bench/many_shards.py [--sizes 64,256,1024] [--eval-sets shards] [--run 64] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import kit  # noqa: E402

DOMAINS = ["unittest", "test", "idlelib", "encodings", "distutils", "pydoc_data", "tkinter", "lib2to3"]
UNIT_TOKENS = 1000


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
        kit.snakemake(work, config(work / "data", None), "results/corpus/corpus/manifest.json")
    shards = json.loads(manifest.read_text())["shards"]
    return [name for name, info in shards.items() if info["heldout_tokens"] >= 64 and info["train_tokens"] > 256]


def run(workdir: Path, sizes=(64, 256, 1024), eval_sets="shards") -> dict:
    available = split(workdir)
    out = {}
    for n in sizes:
        cfg = config(workdir / "data", units(n, available), eval_sets)
        r = kit.snakemake(workdir, cfg, "-n", "--quiet", "rules")
        planned = kit.planned_jobs(r["out"])
        total = sum(planned.values())
        out[f"{n} shards"] = {"mixtures": n * (n + 1) // 2, "eval_sets": eval_sets, "jobs": total,
                              "evaluation_jobs": planned.get("evaluate_batch", 0),
                              "cpu_seconds": round(r["cpu"], 2), "ms_cpu_per_job": round(1000 * r["cpu"] / total, 2),
                              "wall_seconds": round(r["seconds"], 2), "peak_rss_mib": round(r["rss"])}
        print(f"{n} shards: {json.dumps(out[f'{n} shards'])}", flush=True)
    return out


def fixed_cost(work: Path, warm_start: bool) -> float:
    """CPU seconds (the job's process and, with warm start, its forked child) of an evaluation
    job that scores only the seed on 64 tokens of each eval set: what a job costs before its
    models (median of three)."""
    import resource

    from shardmix import config as shardmix_config
    from shardmix import warm
    from shardmix.plan import Planner

    cfg = shardmix_config.check(yaml.safe_load((work / "config.yaml").read_text()))
    cfg["evaluation"].update(max_tokens=64, min_tokens=2)
    here = os.getcwd()
    os.chdir(work)  # the planner reads the run's folder where Snakemake would: the working directory
    try:
        job = Planner(cfg).eval_args("g0", "seed").replace('"results/scores/g0/seed.csv"', '"probe.csv"')
    finally:
        os.chdir(here)
    env = {"PYTHONPATH": str(kit.ROOT), "PATH": os.environ["PATH"], "SHARDMIX_DEVICE": "cpu"}
    server = warm.start(str(kit.ROOT), str(work / "probe-warm.log")) if warm_start else None
    try:
        if server:
            env[warm.ENV] = server[0]
        costs = []
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            p = subprocess.run([sys.executable, str(kit.ROOT / "workflow_scripts/evaluate_batch.py"), job, "1",
                                '{"resident_mb": 4096}'], cwd=work, env=env, capture_output=True, text=True, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            child = re.search(r"warm start: ran in pid \d+, ([\d.]+) CPU-s", p.stderr)
            costs.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                         + (float(child.group(1)) if child else 0.0))
    finally:
        if server:
            warm.stop(*server)
        (work / "probe.csv").unlink(missing_ok=True)
    return sorted(costs)[1]


def warm_cpu(log: Path) -> float:
    """CPU seconds of a job's warm-start child, from the line the job's process writes."""
    found = re.search(r"warm start: ran in pid \d+, ([\d.]+) CPU-s", log.read_text(errors="replace")) \
        if log.exists() else None
    return float(found.group(1)) if found else 0.0


def benchmarks(work: Path) -> dict:
    """Rule -> jobs, summed CPU and wall seconds, peak RSS (MiB), from Snakemake's benchmark files."""
    import csv

    out = {}
    for tsv in (work / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(work / "benchmarks").parts[0].removesuffix(".tsv")
        with open(tsv) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        r = out.setdefault(rule, {"jobs": 0, "cpu_seconds": 0.0, "seconds": 0.0, "peak_rss_mib": 0.0})
        r["jobs"] += 1
        # with warm start the benchmark sees the job's process, not the forked child that did the work
        log = work / "logs" / tsv.relative_to(work / "benchmarks").with_suffix(".log")
        r["cpu_seconds"] += float(row["cpu_time"]) + warm_cpu(log)
        r["seconds"] += float(row["s"])
        r["peak_rss_mib"] = max(r["peak_rss_mib"], float(row["max_rss"]))
    return {k: {m: round(v, 1) if isinstance(v, float) else v for m, v in r.items()} for k, r in out.items()}


def real_run(workdir: Path, n: int = 64, eval_sets="shards", warm_start=True) -> dict:
    """Every pair of n shards, run to `rule all` and the report."""
    available = split(workdir)
    cfg = config(workdir / "data", units(n, available), eval_sets)
    cfg["runtime"] = {"warm_start": warm_start}
    run = kit.snakemake(workdir, cfg)
    report = kit.snakemake(workdir, cfg, "--report", "results/report.html")
    done = [int(x) for x in re.findall(r"(\d+) of \d+ steps \(100%\) done", run["out"])]
    rules = benchmarks(workdir)
    fixed = {"cold": fixed_cost(workdir, False), "warm": fixed_cost(workdir, True)}
    used = "warm" if cfg["runtime"]["warm_start"] else "cold"
    jobs_started = sum(r["jobs"] for k, r in rules.items() if k in ("evaluate", "train_shard"))
    cpu = sum(r["cpu_seconds"] for k, r in rules.items() if k in ("evaluate", "train_shard"))
    scores = workdir / "results/scores.parquet"
    mixtures = n * (n - 1) // 2
    return {"shards": n, "eval_sets": eval_sets, "wall_seconds": round(run["seconds"]), "jobs": done[-1] if done else None,
            "report_seconds": round(report["seconds"]), "report_peak_rss_mib": round(report["rss"]),
            "rules": rules, "fixed_cpu_per_evaluation_job": {k: round(v, 2) for k, v in fixed.items()},
            "startup_share_of_job_cpu": round(fixed[used] * jobs_started / cpu, 3) if cpu else None,
            "merged_mixtures_per_eval_second": round(mixtures / rules["evaluate"]["seconds"], 2),
            "scores_rows": _rows(scores), "scores_parquet_mib": round(scores.stat().st_size / 2**20, 2),
            "scores_csv_mib": round((workdir / "results/scores.csv").stat().st_size / 2**20, 2)
            if (workdir / "results/scores.csv").exists() else None}


def _rows(parquet: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(parquet).metadata.num_rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--eval-sets", default="shards")
    parser.add_argument("--run", type=int, help="also run every pair of this many shards for real")
    parser.add_argument("--work")
    a = parser.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="many-shards-"))
    figures = {"dry runs": run(work, [int(s) for s in a.sizes.split(",")], a.eval_sets) if a.sizes else {}}
    if a.run:
        figures["real run"] = real_run(work / "run", a.run, a.eval_sets)
    print(json.dumps(figures, indent=2))
