"""Rule seed_model: pretrain a small Llama-style model from scratch on the foundation sources'
seed data (each source's share of the budget in proportion to its seed tokens)."""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import json
import shutil

from shardmix import model as models
from shardmix import seed_data as seed_spans
from shardmix import tokenizer, tokens, training
from shardmix.jobs import job_args, job_device

args = job_args()
resume_dir = f"{args['out']}.resume"
tok = tokenizer.load(args["tokenizer"])
if "seed_domains" in args:  # only some domains' seed data (config seed_domains)
    seed_data = []
    for path, manifest, domains in zip(args["seed_tokens"], args["manifests"], args["seed_domains"]):
        with open(manifest) as f:
            seed_data.append(seed_spans.read(path, json.load(f), domains))
else:
    seed_data = [tokens.load(p) for p in args["seed_tokens"]]
total = sum(len(s) for s in seed_data)
cfg = args["training"]
budget = cfg["tokens"] or total
device = job_device()
lm = models.build_llama(args["architecture"], tok)
print(f"seed model: {sum(p.numel() for p in lm.parameters())} parameters, {total} seed tokens from "
      f"{len(seed_data)} source(s), budget {budget} tokens on {device}")
shares = [round(budget * len(s) / total) for s in seed_data]
log = training.train(lm, seed_data, shares, cfg, args["architecture"]["context"], device, label="seed",
                     resume_dir=resume_dir, checkpoint_every=args.get("checkpoint_every", 0),
                     log_every=args.get("log_every", 10), inputs=args["seed_tokens"],
                     options=training.Options.from_settings(args))
models.save(lm.cpu(), tok, args["out"], extra={"train_log.json": log}, label="seed")
shutil.rmtree(resume_dir, ignore_errors=True)
print(f"done: {log['tokens']} tokens in {log['seconds']}s ({log['tokens_per_second']} tokens/s)")
