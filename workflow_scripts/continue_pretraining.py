"""Rules train_shard (and true mixtures): continue pretraining the seed on shard token files.

Every source gets the same token budget; a fresh AdamW starts from the seed's weights.
"""
from pathlib import Path

from shardmix import model as models
from shardmix import tokenizer, tokens, training
from shardmix.jobs import job_args, job_device, write_json

args = job_args()
tok = tokenizer.load(args["seed"])
device = job_device()
lm = models.load_causal_lm(args["seed"])
sources = [tokens.load(p) for p in args["sources"]]
budget = args["training"]["tokens"]
context = min(args["context"], models.context_length(lm))
print(f"continue pretraining {args['seed']} on {len(sources)} source(s), {budget} tokens each, on {device}")
log = training.train(lm, sources, [budget] * len(sources), args["training"], context, device, label=args["label"])
log["sources"] = args["sources"]
Path(args["out"]).mkdir(parents=True, exist_ok=True)
models.save(lm.cpu(), tok, args["out"])
write_json(Path(args["out"]) / "train_log.json", log)
print(f"done: {log['tokens']} tokens in {log['seconds']}s ({log['tokens_per_second']} tokens/s)")
