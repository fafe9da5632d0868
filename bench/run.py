"""`make bench`: every speed and memory comparison, printed as a table and written to
results/bench/bench.json with the configuration, the machine and the date.

Each comparison runs both sides on the same model, data, batch, context and precision, in
separate processes, alternating A/B `--repeats` times; figures are medians. Nothing here is a
test: targets are reported as met or missed, never asserted.
    python bench/run.py [--repeats 2] [--only training,paper_scale,evaluation,...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import kit  # noqa: E402

OUT = kit.ROOT / "results/bench"
# `make bench`: speed and memory of one model, job or selection (under 40 minutes)
DEFAULT = ("training", "paper_scale", "evaluation", "scoring", "precision", "amortisation", "selection",
           "tokenizer_memory")
# `make bench-scale`: planning and running many shards, splitting corpora of 0.25-5 GB (about 2 h)
SCALE = ("planning", "many_shards", "ingest")
SECTIONS = DEFAULT + SCALE
# per model: steps and batch of the training comparison, scored tokens of the evaluation ones;
# training at 29M is not compared any more: bench/paper_scale.py compares 124M
SIZES = {"demo-1.6M": {"steps": 30, "batch": 8, "eval_tokens": 4096, "mixtures": 8, "training": True},
         "29M": {"steps": 6, "batch": 4, "eval_tokens": 2048, "mixtures": 3, "training": False}}
CONTEXT = 256


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def training(corpus: dict, repeats: int) -> dict:
    out = {}
    for arch, size in ((a, s) for a, s in SIZES.items() if s["training"]):
        run = dict(arch=arch, corpus=corpus, steps=size["steps"], batch=size["batch"], context=CONTEXT)
        ours, hf = kit.alternate(lambda: kit.side("speed", "train_ours", **run),
                                 lambda: kit.side("speed", "train_trainer", **run), repeats)
        diff = max(abs(a - b) for a, b in zip(ours[0]["loss"], hf[0]["loss"]))
        out[arch] = {"parameters": ours[0]["parameters"], "steps": ours[0]["steps"], "batch": size["batch"],
                     "ours_tokens_per_s": kit.median(ours, "tokens_per_s"),
                     "trainer_tokens_per_s": kit.median(hf, "tokens_per_s"),
                     "ours_peak_rss_mib": kit.median(ours, "peak_rss_mib"),
                     "trainer_peak_rss_mib": kit.median(hf, "peak_rss_mib"),
                     "max_loss_difference": round(diff, 5), "ours_final_loss": ours[0]["loss"][-1],
                     "trainer_final_loss": hf[0]["loss"][-1]}
        out[arch]["ratio"] = ratio(out[arch]["ours_tokens_per_s"], out[arch]["trainer_tokens_per_s"])
    return out


def evaluation(corpus: dict, repeats: int) -> dict:
    out = {}
    for arch, size in SIZES.items():
        for batch_windows in (1, 16):
            run = dict(arch=arch, corpus=corpus, n_tokens=size["eval_tokens"], context=CONTEXT,
                       batch_windows=batch_windows)
            ours, plain = kit.alternate(lambda: kit.side("speed", "eval_ours", **run),
                                        lambda: kit.side("speed", "eval_plain", **run), repeats)
            a, b = kit.median(ours, "tokens_per_s"), kit.median(plain, "tokens_per_s")
            out[f"{arch}, {'batched 16' if batch_windows > 1 else 'unbatched'}"] = {
                "ours_tokens_per_s": a, "plain_tokens_per_s": b, "ratio": ratio(a, b),
                "ppl_relative_difference": abs(ours[0]["ppl"] - plain[0]["ppl"]) / plain[0]["ppl"]}
    return out


def scoring(corpus: dict, repeats: int, workdir: Path) -> dict:
    import torch

    from shardmix import model as models
    from shardmix import tokenizer

    out = {}
    tok = tokenizer.load(corpus["tokenizer"])
    for arch, size in SIZES.items():
        dirs = []
        for i in range(16):
            lm = kit.build_model(arch, corpus["tokenizer"], seed=i)
            dirs.append(str(workdir / arch / f"m{i}"))
            models.save(lm, tok, dirs[-1], dtype=torch.float32, label=f"m{i}")
        for k in (2, 8, 16):
            run = dict(arch=arch, corpus=corpus, dirs=dirs, k=k, mixtures=size["mixtures"],
                       n_tokens=size["eval_tokens"])
            runs = {m: [] for m in ("saved", "streamed", "resident")}
            for _ in range(repeats):
                for mode in runs:
                    runs[mode].append(kit.side("speed", "score", mode=mode, **run))
            saved = kit.median(runs["saved"], "seconds_per_model")
            out[f"{arch}, k={k}"] = {
                **{f"{m}_seconds_per_model": kit.median(r, "seconds_per_model") for m, r in runs.items()},
                **{f"{m}_build_seconds": kit.median(r, "build_seconds_per_model") for m, r in runs.items()},
                **{f"{m}_peak_rss_mib": kit.median(r, "peak_rss_mib") for m, r in runs.items()},
                "resident_pool_load_seconds": kit.median(runs["resident"], "pool_load_seconds"),
                "streamed_vs_saved": ratio(kit.median(runs["streamed"], "seconds_per_model"), saved),
                "resident_vs_saved": ratio(kit.median(runs["resident"], "seconds_per_model"), saved)}
        shutil.rmtree(workdir / arch)
    return out


def precision(corpus: dict, repeats: int) -> dict:
    run = dict(arch="demo-1.6M", corpus=corpus, steps=SIZES["demo-1.6M"]["steps"], batch=8, context=CONTEXT,
               heldout=True)
    fp32, bf16 = kit.alternate(lambda: kit.side("speed", "train_ours", **run),
                               lambda: kit.side("speed", "train_ours", bf16=True, **run), repeats)
    out = {"fp32_tokens_per_s": kit.median(fp32, "tokens_per_s"), "bf16_tokens_per_s": kit.median(bf16, "tokens_per_s"),
           "fp32_heldout_loss": kit.median(fp32, "heldout_loss"), "bf16_heldout_loss": kit.median(bf16, "heldout_loss")}
    out["speedup"] = ratio(out["bf16_tokens_per_s"], out["fp32_tokens_per_s"])
    out["loss_change"] = round(out["bf16_heldout_loss"] / out["fp32_heldout_loss"] - 1, 5)
    out["bf16_worth_it"] = out["speedup"] > 1 and abs(out["loss_change"]) <= 0.01
    return out


def amortisation(corpus: dict, repeats: int, workdir: Path) -> dict:
    from math import comb

    run = dict(arch="demo-1.6M", corpus=corpus, steps=8, batch=8, context=CONTEXT, n_tokens=4096,
               workdir=str(workdir))
    merged, trained = kit.alternate(lambda: kit.side("speed", "amortise", how="merge", **run),
                                    lambda: kit.side("speed", "amortise", how="train", **run), repeats)
    out = {"shards": len(corpus["shards"]), "mixtures": merged[0]["mixtures"],
           "merge_seconds": kit.median(merged, "seconds"), "train_seconds": kit.median(trained, "seconds"),
           "merge_training_steps": merged[0]["training_steps"], "train_training_steps": trained[0]["training_steps"]}
    out["speedup"] = ratio(out["train_seconds"], out["merge_seconds"])
    # every multi-shard subset of n shards: n shard budgets, against k budgets per k-subset
    out["token_arithmetic"] = {n: {"mixtures": 2 ** n - n - 1, "merge_budgets": n,
                                   "train_budgets": sum(comb(n, k) * k for k in range(2, n + 1))}
                               for n in range(4, 21)}
    for row in out["token_arithmetic"].values():
        row["ratio"] = round(row["train_budgets"] / row["merge_budgets"], 1)
    return out


def selection(corpus: dict, repeats: int) -> dict:
    """Time and peak RSS of choosing from 10k, 100k and 1M candidates (one run each: no A/B here)."""
    return {f"{n:,} candidates": kit.side("selection_scale", "select", n=n, chunk=20_000, max_target=1_000)
            for n in (10_000, 100_000, 1_000_000)}


def tokenizer_memory(corpus: dict, repeats: int) -> dict:
    """Peak RSS of tokenizer training on one 50 MB document, whole against in pieces (target < 1 GiB)."""
    return {"whole": kit.side("tokenizer_memory", "train", mb=50, pieces=False),
            "in pieces": kit.side("tokenizer_memory", "train", mb=50, pieces=True)}


def table(results: dict) -> str:
    lines = []
    for section, rows in results["figures"].items():
        lines.append(f"\n== {section}")
        flat = rows if all(isinstance(v, dict) for v in rows.values()) else {"": rows}
        for name, row in flat.items():
            if name == "token_arithmetic":
                continue
            cells = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                              if not isinstance(v, (list, dict)))
            lines.append(f"{name}: {cells}" if name else cells)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=",".join(DEFAULT), help=f"comma-separated, of: {','.join(SECTIONS)}")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    corpus = kit.corpus(OUT / "data")
    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
               "configuration": {"repeats": args.repeats, "context": CONTEXT, "sizes": SIZES,
                                 "corpus": {p: Path(x).name for p, x in corpus["shards"].items()}},
               "figures": {}}
    if (OUT / "bench.json").exists():  # sections not run this time keep their last figures and date
        before = json.loads((OUT / "bench.json").read_text())
        results["section_dates"] = before.get("section_dates", {})
        results["section_seconds"] = before.get("section_seconds", {})
        results["figures"] = {k: v for k, v in before.get("figures", {}).items() if k not in args.only.split(",")}
    import torch

    results["torch"] = torch.__version__
    with tempfile.TemporaryDirectory() as tmp:
        for section in args.only.split(","):
            print(f"[bench] {section} ...", flush=True)
            started = time.perf_counter()
            if section in ("scoring", "amortisation"):
                figures = globals()[section](corpus, args.repeats, Path(tmp))
            elif section == "paper_scale":
                from bench import paper_scale

                # a 124M side runs about 90 s, long enough to time once
                figures = paper_scale.run(corpus, 1)
            elif section == "planning":
                from bench import planning

                figures = planning.run(Path(tmp) / "planning")
            elif section == "ingest":
                from bench import ingest

                figures = ingest.run(out=OUT / "ingest.json")
            elif section == "many_shards":
                from bench import many_shards

                work = Path(tmp) / "many_shards"
                figures = {f"{size}, dry run": row for size, row in many_shards.run(work).items()}
                figures["64 shards, run"] = many_shards.real_run(work / "run", 64)
            else:
                figures = globals()[section](corpus, args.repeats)
            results["figures"][section] = figures
            results.setdefault("section_dates", {})[section] = results["date"]
            results.setdefault("section_seconds", {})[section] = round(time.perf_counter() - started, 1)
            (OUT / "bench.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results))
    print(f"\nwritten: {OUT / 'bench.json'}")


if __name__ == "__main__":
    main()
