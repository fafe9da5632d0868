"""Rule seed_model: pretrain a small Llama-style model from scratch on the seed data."""
from pathlib import Path

from shardmix import model as models
from shardmix import tokenizer, tokens, training
from shardmix.jobs import job_args, job_device, write_json

args = job_args()
tok = tokenizer.load(args["tokenizer"])
seed_data = tokens.load(args["seed_tokens"])
cfg = args["training"]
budget = cfg["tokens"] or len(seed_data)
device = job_device()
lm = models.build_llama(args["architecture"], tok)
print(f"seed model: {sum(p.numel() for p in lm.parameters())} parameters, {len(seed_data)} seed tokens, "
      f"budget {budget} tokens on {device}")
log = training.train(lm, [seed_data], [budget], cfg, args["architecture"]["context"], device, label="seed")
Path(args["out"]).mkdir(parents=True, exist_ok=True)
models.save(lm.cpu(), tok, args["out"])
write_json(Path(args["out"]) / "train_log.json", log)
print(f"done: {log['tokens']} tokens in {log['seconds']}s ({log['tokens_per_second']} tokens/s)")
