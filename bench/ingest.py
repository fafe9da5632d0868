"""Ingest at scale: splitting generated real-text corpora of 0.25 / 1 / 5 GB of JSONL (and one
of 20 M short documents) in one job, against plain `tokenizers` `encode_batch` on the same text,
the same source in parts run by Snakemake on 1 and 2 cores, and tokenizer training's sample.

The text is this machine's own: Python sources (standard library, installed packages), man
pages, /usr/share/doc, 20 domains. A corpus repeats it, each copy with its own letter swaps
(str.translate), so no two copies tokenize alike. Every measurement runs in a process of its
own: CPU is user + system of that process (the tokenizer's threads included), peak RSS its own.
    python -m bench.ingest [--sizes 0.25,1,5] [--short 20] [--parallel 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import string
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import kit  # noqa: E402

DATA = Path(os.environ.get("SHARDMIX_BENCH_DATA", kit.ROOT / "results/bench/ingest"))
VOCAB = 32768  # a realistic vocabulary (uint16 ids)


def _texts() -> list[tuple[str, str]]:
    """(domain, document) of this machine's text: 20 domains."""
    site = Path(np.__file__).parent.parent
    lib = Path(sysconfig.get_paths()["stdlib"])
    python = {"stdlib-email-json": [lib / "email", lib / "json"], "stdlib-asyncio": [lib / "asyncio"],
              "stdlib-other": [lib / "unittest", lib / "logging", lib / "http", lib / "xml"],
              "numpy": [site / "numpy"], "pandas": [site / "pandas"], "torch": [site / "torch"],
              "transformers": [site / "transformers"], "snakemake": [site / "snakemake"],
              "scipy": [site / "scipy"], "sympy": [site / "sympy"], "pip": [site / "pip"],
              "matplotlib": [site / "matplotlib"], "datasets": [site / "datasets"], "stdlib-idle": [lib / "idlelib"]}
    out = []
    for domain, roots in python.items():
        for root in roots:
            for path in sorted(root.rglob("*.py"))[:3000]:
                out.append((domain, path.read_text(encoding="utf-8", errors="replace")))
    for section in ("1", "3", "5", "8"):
        for path in sorted(Path(f"/usr/share/man/man{section}").glob("*.gz")):
            out.append((f"man{section}", gzip.decompress(path.read_bytes()).decode("utf-8", "replace")))
    for path in sorted(Path("/usr/share/doc").rglob("*")):
        if path.is_file() and path.suffix in ("", ".txt", ".md", ".gz"):
            data = path.read_bytes()
            if path.suffix == ".gz":
                try:
                    data = gzip.decompress(data)
                except OSError:
                    continue
            out.append(("doc", data.decode("utf-8", "replace")))
    return [(d, t) for d, t in out if t.strip()]


def _swap(copy: int):
    """A letter permutation of its own per copy (copy 0 unchanged)."""
    if copy == 0:
        return {}
    rng = np.random.default_rng(copy)
    letters = list(string.ascii_lowercase)
    pairs = rng.permutation(26)[:6].reshape(3, 2)
    table = {}
    for a, b in pairs:
        table[ord(letters[a])], table[ord(letters[b])] = letters[b], letters[a]
    return str.maketrans(table)


def generate(path: Path, gigabytes: float, short: bool = False) -> dict:
    """A JSONL corpus of about `gigabytes`, written once and kept. `short`: one line per
    document (the lines of the texts, 20-200 characters)."""
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return json.loads(meta.read_text())
    base = _texts()
    if short:
        base = [(d, line.strip()) for d, t in base for line in t.splitlines() if 20 <= len(line.strip()) <= 200]
    order = np.random.default_rng(0).permutation(len(base))  # domains interleaved, as in a shuffled crawl
    target, written, documents, copy = int(gigabytes * 1e9), 0, 0, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".partial"), "w") as f:
        while written < target:
            table = _swap(copy)
            for i in order:
                domain, text = base[i]
                line = json.dumps({"text": text.translate(table), "domain": domain}) + "\n"
                f.write(line)
                written += len(line.encode())
                documents += 1
                if written >= target:
                    break
            copy += 1
    path.with_suffix(".partial").rename(path)
    info = {"bytes": path.stat().st_size, "documents": documents, "copies": copy, "short": short}
    meta.write_text(json.dumps(info))
    return info


def _usage() -> dict:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": round(u.ru_utime + u.ru_stime, 1)}


SPEC = {"method": "field", "field": "domain", "chunk_tokens": 2048, "heldout_fraction": 0.05, "seed_fraction": 0.0,
        "seed": 0, "unit_tokens": 1, "k": 2}


def split_one(corpus: str, tokenizer: str, out: str) -> dict:
    """The source in one job, as split_source runs it."""
    from shardmix import corpus as corpora
    from shardmix import sharding
    from shardmix import tokenizer as tokenizers

    tok = tokenizers.load(tokenizer)
    start = time.perf_counter()
    manifest = sharding.split_source(corpora.read_documents({"path": corpus}), tok, SPEC, f"{out}/tokens",
                                     f"{out}/manifest.json", {})
    return {"seconds": round(time.perf_counter() - start, 1), "tokens": manifest["total_tokens"],
            "shards": len(manifest["shards"]), **_usage()}


def encode_batch(corpus: str, tokenizer: str, batch: int = 1000) -> dict:
    """Plain `tokenizers`: read and parse the lines, `encode_batch` their texts, count the ids."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(f"{tokenizer}/tokenizer.json")
    start, tokens, texts = time.perf_counter(), 0, []
    with open(corpus, "rb") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) == batch:
                tokens += sum(len(e.ids) + 1 for e in tok.encode_batch(texts, add_special_tokens=False))
                texts = []
    if texts:
        tokens += sum(len(e.ids) + 1 for e in tok.encode_batch(texts, add_special_tokens=False))
    return {"seconds": round(time.perf_counter() - start, 1), "tokens": tokens, **_usage()}


def train_tokenizer(corpus: str, out: str, vocab: int = VOCAB) -> dict:
    """train_tokenizer's work: the sample (50 MB, tokenizer.max_train_bytes' default), then BPE."""
    from shardmix import tokenizer as tokenizers
    from shardmix.sampling import Sample

    start = time.perf_counter()
    sample = Sample([{"path": corpus}], 50_000_000)
    pieces = (p for text in sample.texts() for p in tokenizers.training_pieces(text))
    shutil.rmtree(out, ignore_errors=True)
    tokenizers.train_bpe(pieces, vocab, out)
    return {"seconds": round(time.perf_counter() - start, 1), "read_mb": round(sample.read_bytes / 1e6, 1),
            "kept_mb": round(sample.kept_bytes / 1e6, 1), **_usage()}


def parallel(corpus: str, tokenizer: str, work: str, cores: int, part_mb: float) -> dict:
    """The split through Snakemake: `--cores cores`, the source in parts of `part_mb`."""
    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sharding = {k: v for k, v in SPEC.items() if k not in ("unit_tokens", "k")}
    config = {"corpus": {"path": corpus, "sharding": sharding}, "eval_sets": [],
              "tokenizer": {"source": "pretrained", "path": tokenizer},
              "model": {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32},
              "seed_training": {"tokens": 8192}, "shard_training": {"tokens": 256}, "mixtures": {"max_size": 2},
              "validation": {}, "search": {"targets": []}, "runtime": {"split_part_mb": part_mb}}
    result = kit.snakemake(work, config, "results/corpus/corpus/manifest.json", "--cores", str(cores))
    manifest = json.loads((work / "results/corpus/corpus/manifest.json").read_text())
    shutil.rmtree(work / "results", ignore_errors=True)
    return {"seconds": round(result["seconds"], 1), "cpu_s": round(result["cpu"], 1),
            "peak_rss_mib": round(result["rss"], 1), "tokens": manifest["total_tokens"],
            "parts": len(manifest.get("parts", [None])), "cores": cores}


def run(sizes=(0.25, 1.0, 5.0), short_millions: float = 20, parallel_gb: float = 1.0, out: Path | None = None) -> dict:
    """Every figure, cheapest first; `out` is rewritten after each, so a long run shows progress."""
    figures = {}

    def record(name, row):
        figures[name] = row
        print(f"[ingest] {name}: {row}", flush=True)
        if out:
            out.write_text(json.dumps(figures, indent=2) + "\n")

    corpora = {size: DATA / f"corpus-{size:g}GB.jsonl" for size in sizes}
    for size, path in corpora.items():
        record(f"corpus {size:g} GB", generate(path, size))
    short = DATA / f"short-{short_millions:g}M.jsonl"
    if short_millions:  # about 85 bytes a line (text and JSON)
        info = generate(short, short_millions * 1e6 * 85 / 1e9, short=True)
        record(f"corpus of short documents ({info['documents'] / 1e6:.1f} M)", info)
    tokenizer = DATA / "tokenizer"
    for size in sorted(sizes, reverse=True)[:2][::-1]:  # the sample's cost at the two largest sizes
        record(f"tokenizer training, {size:g} GB", kit.side("ingest", "train_tokenizer", corpus=str(corpora[size]),
                                                            out=str(tokenizer)))
    smallest = corpora[min(sizes)]
    base = kit.side("ingest", "encode_batch", corpus=str(smallest), tokenizer=str(tokenizer))
    base["tokens_per_cpu_s"] = round(base["tokens"] / base["cpu_s"])
    record(f"encode_batch {min(sizes):g} GB", base)

    def one_job(size, path):
        row = kit.side("ingest", "split_one", corpus=str(path), tokenizer=str(tokenizer), out=str(DATA / "split"))
        shutil.rmtree(DATA / "split", ignore_errors=True)
        row["tokens_per_cpu_s"] = round(row["tokens"] / row["cpu_s"])
        row["vs_encode_batch"] = round(row["tokens_per_cpu_s"] / base["tokens_per_cpu_s"], 3)
        record(f"split {size}, one job", row)
        return row

    ones = {}
    for size in sorted(s for s in sizes if s <= parallel_gb):
        ones[size] = one_job(f"{size:g} GB", corpora[size])
    if parallel_gb:
        for cores in (2, 1):
            row = parallel(str(corpora[parallel_gb]), str(tokenizer), str(DATA / "work"), cores, parallel_gb * 1000 / 4)
            row["wall_vs_one_job"] = round(row["seconds"] / ones[parallel_gb]["seconds"], 3)
            record(f"split {parallel_gb:g} GB in parts, snakemake --cores {cores}", row)
    if short_millions:
        one_job(f"{info['documents'] / 1e6:.1f} M short documents", short)
    for size in sorted(s for s in sizes if s > parallel_gb):
        one_job(f"{size:g} GB", corpora[size])
    return figures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0.25,1,5")
    parser.add_argument("--short", type=float, default=20, help="millions of short documents (0: none)")
    parser.add_argument("--parallel", type=float, default=1, help="GB of the corpus split in parts (0: none)")
    args = parser.parse_args()
    out = kit.ROOT / "results/bench/ingest.json"
    run(tuple(float(s) for s in args.sizes.split(",")), args.short, args.parallel, out)
    print(f"written: {out}")


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] in ("split_one", "encode_batch", "train_tokenizer"):
    kit.serve({"split_one": split_one, "encode_batch": encode_batch, "train_tokenizer": train_tokenizer})
elif __name__ == "__main__":
    main()
