"""Benchmark: peak memory and time of merging k models, streamed (shardmix) vs loading all k.

Prints one line per method. Each method runs in its own process so peak RSS is its own.
    python bench/merge_memory.py [--k 6] [--hidden 512] [--layers 8]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_models(workdir: Path, k: int, hidden: int, layers: int) -> list[Path]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=8192, hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=256, tie_word_embeddings=True)
    dirs = []
    for i in range(k):
        torch.manual_seed(i)
        path = workdir / f"m{i}"
        LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
        dirs.append(path)
    return dirs


def run(method: str, dirs: list[str]) -> None:
    from shardmix import merge
    from shardmix import model as models

    target = models.skeleton(dirs[0])
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if method == "streamed":
        merge.merge_into(target, dirs)
    else:  # every model fully in memory, then averaged
        states = [models.load_causal_lm(d).state_dict() for d in dirs]
        target.load_state_dict({n: sum(s[n] for s in states) / len(states) for n in states[0]})
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in target.parameters())
    print(f"{method:>9}: k={len(dirs)} models of {params / 1e6:.1f}M params ({params * 4 / 2**20:.0f} MiB fp32): "
          f"{seconds:.2f}s, peak RSS {peak:.0f} MiB ({peak - baseline:+.0f} MiB over one loaded model)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("dirs", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        run(args.method, args.dirs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [str(d) for d in make_models(Path(tmp), args.k, args.hidden, args.layers)]
        for method in ("streamed", "all-in-memory"):
            subprocess.run([sys.executable, __file__, "--method", method, *dirs], check=True)


if __name__ == "__main__":
    main()
