"""`make bench-gpu`: shardmix's training loop at the paper's sizes on one CUDA GPU, sized (from
FLOP counts at 40 % MFU on an H100-class GPU) for under 10 minutes, and merged mixtures scored
from a resident pool on the GPU.

Models: the 124M Llama of bench/paper_scale.py (context 1,024) and a 1B-class one shaped like
TinyLlama (2,048 wide, 22 layers, 32 heads sharing 4 key-value heads, SwiGLU 5,632; the GPT-2
vocabulary; context 2,048). Each trains in bf16 autocast (fp32 weights, fused AdamW) with
micro-batch accumulation, with and without torch.compile, on random tokens (speed does not
depend on the text; nothing is downloaded). Figures: tokens/s after the first WARMUP steps,
MFU (model FLOPs per token x tokens/s over the GPU's dense bf16 peak), peak GPU memory.
    python bench/gpu.py [--peak-tflops 989] [--only 124M,1B] [--smoke]
`--smoke` runs tiny models for a few steps on whatever device there is (CPU included): the test
suite's check that this script works before a GPU is ever lent to it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench import paper_scale  # noqa: E402
from shardmix import merging, perplexity, training  # noqa: E402


# dense bf16 peaks (TFLOP/s, without sparsity) by a substring of torch.cuda.get_device_name()
PEAKS = {"H200": 989, "H100": 989, "GH200": 989, "B200": 2250, "A100": 312, "L40S": 362, "L4": 121, "A10": 125,
         "RTX 4090": 165, "RTX 3090": 71}
MODELS = {
    "124M": {"arch": paper_scale.ARCH, "micro_batch": 16, "batch": 32, "steps": 200},
    "1B": {"arch": {"hidden_size": 2048, "layers": 22, "heads": 32, "kv_heads": 4, "ffn_size": 5632, "vocab": 50257,
                    "context": 2048},
           "micro_batch": 8, "batch": 16, "steps": 100},
}
SMOKE = {"arch": {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "vocab": 512, "context": 32},
         "micro_batch": 2, "batch": 4, "steps": 4}
WARMUP = 5  # steps left out of tokens/s: allocation, compilation, autotuning
SETTINGS = {"seed": 0, "lr": 3e-4, "warmup_steps": 10, "schedule": "cosine", "min_lr_ratio": 0.1, "weight_decay": 0.1,
            "grad_clip": 1.0}


def peak_flops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in PEAKS.items() if key in name), None)


def train_one(spec: dict, compiled: bool, device: torch.device, peak: float | None, workdir: Path | None = None):
    """Train one model; its figures (and, with `workdir`, the model saved there for scoring)."""
    arch = spec["arch"]
    model = paper_scale.build(arch)
    data = np.random.default_rng(0).integers(0, arch["vocab"], spec["steps"] * spec["batch"] * (arch["context"] + 1))
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    log = training.train(model, [data], [spec["steps"] * spec["batch"] * arch["context"]],
                         {**SETTINGS, "batch_size": spec["batch"]}, arch["context"], device, label="gpu-bench",
                         log_every=50, options=training.Options(micro_batch_size=spec["micro_batch"], compile=compiled))
    tokens_per_s = paper_scale.steady_tokens_per_s(log, WARMUP)
    skip = min(WARMUP, len(log["step_seconds"]) - 1)
    flops = paper_scale.flops_per_token(model, arch["context"])
    row = {"parameters": sum(p.numel() for p in model.parameters()), "compile": compiled, "steps": log["steps"],
           "tokens_per_step": spec["batch"] * arch["context"], "micro_batch": spec["micro_batch"],
           "tokens_per_s": round(tokens_per_s, 1), "flops_per_token": flops,
           "tflops_per_s": round(tokens_per_s * flops / 1e12, 2),
           "mfu": round(tokens_per_s * flops / peak, 4) if peak else None,
           "first_steps_seconds": round(sum(log["step_seconds"][:skip]), 2), "final_loss": log["final_loss"],
           "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
           if device.type == "cuda" else None}
    if workdir is not None:
        save_members(model, workdir)
    return row


def save_members(model, workdir: Path, count: int = 4) -> None:
    """`count` shard models for the pool: the trained weights, each moved by its own small noise."""
    from shardmix import atomic

    model = model.cpu()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    for i in range(count):
        generator = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(base[name] + 1e-3 * torch.randn(p.shape, generator=generator))
        with atomic.directory(workdir / f"m{i}") as tmp:
            model.save_pretrained(str(tmp), safe_serialization=True)


def score_pool(workdir: Path, device: torch.device, context: int, vocab: int, tokens: int) -> dict:
    """Every mixture of 2-4 of the saved members, built from a resident pool on `device` and
    scored on `tokens` random tokens: seconds per mixture (build and score)."""
    import itertools

    from transformers import AutoModelForCausalLM

    dirs = sorted(str(d) for d in workdir.iterdir() if d.is_dir())
    model = AutoModelForCausalLM.from_pretrained(dirs[0], dtype=torch.float32).to(device)
    start = time.perf_counter()
    pool = merging.ResidentPool(model, dirs, device)
    load = time.perf_counter() - start
    mixtures = [list(m) for k in range(2, len(dirs) + 1) for m in itertools.combinations(dirs, k)]
    eval_set = perplexity.EvalSet(np.random.default_rng(1).integers(0, vocab, tokens))
    linear = merging.method("linear")
    start = time.perf_counter()
    for members in mixtures:
        pool.build(members, [1 / len(members)] * len(members), linear)
        score = perplexity.evaluate(model, eval_set, np.ones(vocab, dtype=np.int64), context, 8, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"members": len(dirs), "mixtures": len(mixtures), "tokens_per_mixture": score["tokens"],
            "pool_load_seconds": round(load, 2), "seconds_per_mixture": round(seconds / len(mixtures), 3)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models, a few steps, any device")
    parser.add_argument("--only", default="124M,1B")
    parser.add_argument("--compile", default="off,on", help="which of off,on to run")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, for MFU")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "results/bench/gpu.json"))
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        sys.exit("no CUDA device: bench/gpu.py measures a GPU (--smoke checks the script on any device)")
    peak = peak_flops(device, args.peak_tflops)
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "peak_tflops": peak / 1e12 if peak else None, "smoke": args.smoke, "training": {}, "scoring": {}}
    specs = {"smoke": SMOKE} if args.smoke else {k: MODELS[k] for k in args.only.split(",")}
    started = time.perf_counter()
    for name, spec in specs.items():
        with tempfile.TemporaryDirectory() as tmp:
            for compiled in (c == "on" for c in args.compile.split(",")):
                key = f"{name}, compile {'on' if compiled else 'off'}"
                print(f"[bench-gpu] {key} ...", flush=True)
                try:  # one configuration failing (a compiler missing, memory) leaves the others' figures
                    result["training"][key] = train_one(spec, compiled, device, peak,
                                                        Path(tmp) if not compiled else None)
                except Exception as e:  # noqa: BLE001 - reported in the figures, not raised
                    traceback.print_exc()
                    result["training"][key] = {"error": f"{type(e).__name__}: {e}"[:500]}
                print(json.dumps(result["training"][key]), flush=True)
            if any(Path(tmp).iterdir()):
                try:
                    result["scoring"][name] = score_pool(Path(tmp), device, spec["arch"]["context"],
                                                         spec["arch"]["vocab"], 4 * spec["arch"]["context"])
                except Exception as e:  # noqa: BLE001
                    traceback.print_exc()
                    result["scoring"][name] = {"error": f"{type(e).__name__}: {e}"[:500]}
                print(json.dumps(result["scoring"][name]), flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out} ({result['seconds']} s)")
    return result


if __name__ == "__main__":
    main()
