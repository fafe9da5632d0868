"""Rules train_shard and train_full: continue pretraining the seed on shard token files.

Every source gets the shard budget, or for a weighted mixture of k shards its weight's share
of k budgets; a fresh AdamW starts from the seed's weights. The
model is saved in the seed's dtype; a resumable state is kept in `<out>.resume` meanwhile.
"""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import shutil

from shardmix import model as models
from shardmix import tokenizer, tokens, training
from shardmix.jobs import RECORD, fail, job_args, job_device, record

args = job_args()
resume_dir = f"{args['out']}.resume"
tok = tokenizer.load(args.get("tokenizer", args["seed"]))
device = job_device()
lm = models.load_causal_lm(args["seed"])
try:
    models.check_causal(lm, len(tok))
except models.ModelError as e:
    fail(str(e))
dtype = models.checkpoint_dtype(args["seed"])
sources = [tokens.load(p) for p in args["sources"]]
# a weighted mixture of k shards: k shard budgets in all, each member its weight's share
budgets = args.get("budgets") or [args["training"]["tokens"]] * len(sources)
context = min(args["context"], models.context_length(lm))
print(f"continue pretraining {args['seed']} ({dtype}) on {len(sources)} source(s), {budgets} tokens, on {device}")
log = training.train(lm, sources, budgets, args["training"], context, device, label=args["label"],
                     resume_dir=resume_dir, checkpoint_every=args.get("checkpoint_every", 0),
                     log_every=args.get("log_every", 10), inputs=[args["seed"], *args["sources"]],
                     options=training.Options.from_settings(args))
log["sources"] = args["sources"]
models.save(lm.cpu(), tok, args["out"], dtype=dtype, extra={"train_log.json": log, RECORD: record()},
            label=args["label"])
shutil.rmtree(resume_dir, ignore_errors=True)
print(f"done: {log['tokens']} tokens in {log['seconds']}s ({log['tokens_per_second']} tokens/s)")
