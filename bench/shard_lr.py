"""Which shard-training settings make every shard model better than the seed on its own held-out set?

Reads a finished run (default: the demo's results/): for each shard and each candidate learning
rate and warmup, continues pretraining the run's seed on the shard exactly as train_shard does
(shard_training's other settings, its budget) and scores the model on the shard's held-out set,
as the run scores it. Prints the held-out ppl against the seed's and writes
results/bench/shard_lr.json. Usage: python bench/shard_lr.py [config.yaml] [lr:warmup ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402

from shardmix import config as shardmix_config  # noqa: E402
from shardmix import model as models  # noqa: E402
from shardmix import perplexity, tokenizer, tokens, training  # noqa: E402
from shardmix.plan import Planner  # noqa: E402

CANDIDATES = ["0.001:4", "0.0005:4", "0.0003:4", "0.0005:16"]


def main(config_path: str, candidates: list[str]) -> None:
    with open(config_path) as f:
        cfg = shardmix_config.check(yaml.safe_load(f), source=config_path)
    plan = Planner(cfg, [config_path])
    torch.set_num_threads(2)
    device = torch.device("cpu")
    tok = tokenizer.load(plan.tokenizer)
    byte_lengths = tokenizer.token_byte_lengths(tok)
    max_tokens = cfg["evaluation"]["max_tokens"]
    seed = models.load_causal_lm(plan.seed_model)
    context = min(cfg["model"]["context"], models.context_length(seed))
    rows = []
    for shard in plan.shard_sources():
        held = perplexity.load_set(plan.eval_set_spec(shard), max_tokens)
        seed_ppl = perplexity.evaluate(seed, held, byte_lengths, context, 16, device)["ppl"]
        data = tokens.load(plan.train_tokens(shard))
        for candidate in candidates:
            lr, warmup = candidate.split(":")
            settings = {**plan.settings("shard_training"), "lr": float(lr), "warmup_steps": int(warmup)}
            lm = models.load_causal_lm(plan.seed_model)
            start = time.perf_counter()
            training.train(lm, [data], [settings["tokens"]], settings, context, device, label=shard, log_every=10**9)
            ppl = perplexity.evaluate(lm, held, byte_lengths, context, 16, device)["ppl"]
            rows.append({"shard": shard, "lr": float(lr), "warmup_steps": int(warmup), "seed_ppl": round(seed_ppl, 3),
                         "shard_ppl": round(ppl, 3), "gain": round(1 - ppl / seed_ppl, 4),
                         "seconds": round(time.perf_counter() - start, 1)})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'lr:warmup':>12} {'shards better than the seed':>28} {'mean gain':>10} {'worst gain':>11}")
    for candidate in candidates:
        lr, warmup = candidate.split(":")
        mine = [r for r in rows if r["lr"] == float(lr) and r["warmup_steps"] == int(warmup)]
        better = sum(r["gain"] > 0 for r in mine)
        print(f"{candidate:>12} {better:>23} / {len(mine)} {sum(r['gain'] for r in mine) / len(mine):>10.2%} "
              f"{min(r['gain'] for r in mine):>11.2%}")
    out = ROOT / "results/bench/shard_lr.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config_path, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    config = args.pop(0) if args and args[0].endswith((".yaml", ".yml")) else "config.yaml"
    main(config, args or CANDIDATES)
