"""What the benchmarks share: a real-text token corpus, models of set sizes, and A/B timing.

The corpus is Python's own standard library (source text, present offline on every machine),
one shard per package, tokenized with a BPE tokenizer trained on it as shardmix trains one.
Each side of a comparison runs in its own process, so its peak RSS is its own.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARD_PACKAGES = ["email", "http", "asyncio", "logging", "xml", "unittest", "json", "concurrent",
                  "importlib", "multiprocessing", "urllib", "html", "sqlite3", "tomllib", "zoneinfo", "wsgiref",
                  "ctypes"]
# the demo's Llama (1.6M parameters) and one of about 29M, both with an 8192-token vocabulary
ARCHS = {
    "demo-1.6M": {"hidden_size": 128, "layers": 2, "heads": 4, "ffn_size": 512, "context": 256},
    "29M": {"hidden_size": 512, "layers": 6, "heads": 8, "ffn_size": 2048, "context": 256},
    "100M": {"hidden_size": 768, "layers": 12, "heads": 12, "ffn_size": 3072, "context": 512},
}


def documents(package: str, limit: int = 400_000) -> list[str]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    texts, used = [], 0
    for path in sorted((lib / package).rglob("*.py")):
        if used >= limit:
            break
        text = path.read_text(encoding="utf-8", errors="replace")[: limit - used]
        used += len(text)
        texts.append(text)
    return texts


def corpus(workdir: Path, packages=SHARD_PACKAGES[:4], limit: int = 400_000) -> dict:
    """{"tokenizer": dir, "shards": {package: token file}} under workdir, built once."""
    import numpy as np

    from shardmix import tokenizer, tokens

    workdir.mkdir(parents=True, exist_ok=True)
    tok_dir = workdir / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        tokenizer.train_bpe((t for p in packages for t in documents(p, limit)), 8192, str(tok_dir))
    tok = tokenizer.load(str(tok_dir))
    shards = {}
    for p in packages:
        path = workdir / f"{p}.npy"
        if not path.exists():
            ids = np.concatenate(tokenizer.encode_documents(tok, documents(p, limit)))
            tokens.save(path, ids, len(tok))
        shards[p] = str(path)
    return {"tokenizer": str(tok_dir), "shards": shards}


def build_model(arch_name: str, tokenizer_dir: str, seed: int = 0):
    from transformers.utils import logging

    from shardmix import model as models

    logging.disable_progress_bar()  # a bar per saved model would bury the bench's own output
    from shardmix import tokenizer

    arch = {**ARCHS[arch_name], "tie_embeddings": True, "init_seed": seed}
    return models.build_llama(arch, tokenizer.load(tokenizer_dir))


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def side(module: str, name: str, **kwargs) -> dict:
    """Run one side of a comparison in a fresh process: its figures, plus its peak RSS (MiB)."""
    out = subprocess.run([sys.executable, "-m", f"bench.{module}", name, json.dumps(kwargs)], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"bench.{module} {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    """This process's peak RSS. Linux's ru_maxrss keeps the peak from before exec, so a side
    started by a big parent would report the parent's; VmHWM is the peak of this image alone."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(functions: dict) -> None:
    """The entry of a side's process: `python -m bench.<module> <side> '<json kwargs>'`."""
    result = functions[sys.argv[1]](**json.loads(sys.argv[2]))
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(json.dumps(result))


def alternate(a, b, repeats: int = 3) -> tuple[list[dict], list[dict]]:
    """A, B, A, B, ... `repeats` times each, so drift in the machine's load hits both sides."""
    runs_a, runs_b = [], []
    for _ in range(repeats):
        runs_a.append(a())
        runs_b.append(b())
    return runs_a, runs_b


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


# CPU (user + system) and peak RSS of the child: the machine is shared, so CPU, not wall time
_WRAP = ("import resource, subprocess, sys, json; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
         "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
         "print(json.dumps({'rc': p.returncode, 'out': p.stdout + p.stderr, 'cpu': u.ru_utime + u.ru_stime, "
         "'rss': u.ru_maxrss / 1024}))")


def snakemake(work: Path, config: dict, *args: str) -> dict:
    """Run the workflow on `config` in `work`: its output, return code, CPU seconds, peak RSS
    (MiB) and wall seconds."""
    import time

    import yaml

    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", "2", *args]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAP, *cmd], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result["rc"]:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result['out'][-4000:]}")
    result["seconds"] = time.perf_counter() - start
    return result


def planned_jobs(text: str) -> dict[str, int]:
    """Rule -> jobs, from the 'Job stats' table a (dry) run prints."""
    import re

    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}
