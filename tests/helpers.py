"""What the tests share besides fixtures: a small real corpus (the running Python's standard
library source, PSF licence), the tiny config, a tiny tokenizer, and Snakemake run as a user would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DATA = TESTS / "data"  # recorded outputs of earlier versions
PROJECT_FILES = ["Snakefile", "rules", "workflow_scripts", "shardmix", "schemas", "profiles", "report"]
DOMAIN_BYTES = 40_000
SHARDS = ["json", "email", "http"]
ADDED_SHARD = "logging"


def stdlib_documents(package: str, limit: int = DOMAIN_BYTES):
    """Source files of one standard-library package, as documents, up to `limit` bytes."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    used = 0
    for path in sorted((lib / package).rglob("*.py")):
        if used >= limit:
            return
        text = path.read_text(encoding="utf-8")[: limit - used]
        used += len(text)
        yield {"text": text, "domain": package, "file": str(path.relative_to(lib))}


def write_jsonl(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def tiny_config(data: Path) -> dict:
    return {
        "corpus": {"path": str(data / "corpus.jsonl")},
        "sharding": {"method": "field", "field": "domain", "include": list(SHARDS), "chunk_tokens": 64,
                     "heldout_fraction": 0.2, "seed_fraction": 0.3},
        "eval_sets": [{"name": "extra_urllib", "path": str(data / "extra.jsonl")}],
        "tokenizer": {"vocab_size": 512},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32},
        "seed_training": {"tokens": 8192, "batch_size": 8, "lr": 0.005, "schedule": "cosine", "warmup_steps": 4},
        "shard_training": {"tokens": 2048, "batch_size": 8, "lr": 0.003},
        "mixtures": {"max_size": 3, "batch_size": 3, "weighted": [{"json": 0.75, "http": 0.25}],
                     "methods": ["linear", {"task_arithmetic": 1.5}]},
        "validation": {"explicit": [["json", "email"], ["http", "json"], ["email", "http", "json"],
                                    {"json": 0.75, "http": 0.25}]},
        "search": {"targets": [{"name": "all"}, {"name": "json", "eval_sets": ["json"]}], "steps": 5},
        "evaluation": {"max_tokens": 1024, "min_tokens": 256},
    }


def copy_project(dest: Path, preserve_times: bool = True) -> Path:
    copy = shutil.copy2 if preserve_times else shutil.copy
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, copy_function=copy,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            copy(src, dest / name)
    return dest


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir,
                          env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table a (dry) run prints."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats:"):]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


def ran_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> number of jobs a real run started (checkpoints make its first 'Job stats' partial)."""
    counts: dict[str, int] = {}
    for rule in re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", proc.stdout + proc.stderr, re.M):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def grown_config(data: Path) -> dict:
    """The tiny config with a second corpus source, of which one shard (ADDED_SHARD) is used."""
    config = tiny_config(data)
    include = config["sharding"].pop("include")
    config["corpus"] = [{"name": "corpus", **config["corpus"], "sharding": {"include": include}},
                        {"name": "more", "path": str(data / "more.jsonl"), "sharding": {"include": [ADDED_SHARD]}}]
    return config


_TOK = None


def tiny_tokenizer():
    """A small byte-level BPE tokenizer trained on standard-library source."""
    global _TOK
    if _TOK is None:
        import tempfile

        from shardmix import tokenizer

        texts = [d["text"] for d in stdlib_documents("json", 20_000)]
        _TOK = tokenizer.train_bpe(texts, 300, tempfile.mkdtemp())
    return _TOK


def paragraph_documents() -> list[dict]:
    """Documents of three packages cut at blank lines (many documents of every size), one empty."""
    docs = [{"text": p, "domain": d["domain"]} for pkg in ("json", "http", "email")
            for d in stdlib_documents(pkg, 12_000) for p in d["text"].split("\n\n")]
    docs.insert(5, {"text": "", "domain": "json"})
    return docs


def whole_documents() -> list[dict]:
    """Whole source files of two packages, as documents."""
    return [d for pkg in ("json", "http") for d in stdlib_documents(pkg, 8_000)]


def token_sums(folder: Path) -> dict:
    """File -> SHA-256 of a sealed folder (its SHA256SUMS)."""
    return dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines())


def copy_run(pipeline: Path, work: Path) -> Path:
    """A copy of a finished run that keeps file times and .snakemake, like the same checkout."""
    shutil.copytree(pipeline, work, symlinks=True)
    return work


AUTOSCALE_DOMAINS = ["json", "http"]


def autoscale_config(data: Path) -> dict:
    """The tiny config with AutoScale over two of its shards."""
    config = tiny_config(data)
    budget = config["shard_training"]["tokens"]
    config["autoscale"] = {"domains": AUTOSCALE_DOMAINS, "scales": [2 * budget, 4 * budget],
                           "targets": ["extra_urllib"], "predict": [16 * budget], "check": 8 * budget}
    return config


def selection_config(data: Path, targets: list) -> dict:
    """The tiny config with a selection pool of two packages (data/pool.jsonl) toward `targets`."""
    config = tiny_config(data)
    config["selection"] = {"pool": {"path": str(data / "pool.jsonl"), "field": "domain",
                                    "values": ["xml", "urllib"]},
                           "targets": targets, "unit_tokens": 32, "embedding": {"batch_size": 64}}
    return config


def tiny_checkpoint(folder: Path, name: str, vocab_tok=None, **arch):
    """A tiny Llama (tiny_tokenizer) saved as `folder/name`: (its folder, the model)."""
    from shardmix import model as models

    tok = tiny_tokenizer()
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32, "tie_embeddings": True,
            "init_seed": 0, **arch}
    lm = models.build_llama(arch, tok)
    models.save(lm, tok, folder / name)
    return folder / name, lm


def saved_models(folder: Path, n: int = 3) -> list[Path]:
    """A seed and n perturbed copies of a tiny Llama, saved as safetensors checkpoints."""
    import torch

    from shardmix import model as models

    tok = tiny_tokenizer()
    arch = {"hidden_size": 16, "layers": 1, "heads": 2, "ffn_size": 32, "context": 16, "tie_embeddings": True,
            "init_seed": 0}
    dirs = []
    for i in range(n + 1):
        lm = models.build_llama(arch, tok)
        torch.manual_seed(i)
        with torch.no_grad():
            for p in lm.parameters():
                p.add_(0.1 * i * torch.randn_like(p))
        models.save(lm, tok, folder / f"m{i}", label=f"m{i}")
        dirs.append(folder / f"m{i}")
    return dirs


def code_tokenizer():
    """A BPE tokenizer trained on two lines of code, for models the trust tests save."""
    from shardmix import tokenizer

    return tokenizer.train_bpe(["def f(x):\n    return x + 1\n" * 50, "print('hello world')\n" * 50], 300,
                               "/tmp/shardmix-trust-tok")


def saved_model(folder: Path, tok=None):
    """A tiny Llama saved in `folder`: (the model, its tokenizer)."""
    from shardmix import model as models

    tok = tok or code_tokenizer()
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16, "tie_embeddings": True,
            "init_seed": 0}
    lm = models.build_llama(arch, tok)
    models.save(lm, tok, folder)
    return lm, tok


class Payload:
    """Unpickling this writes a marker file: it proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickle(path: Path, marker) -> None:
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Payload(marker)))
