"""Rule token_nll: one shard model's NLL of every token of one eval-set group (the ensemble proxy's cache)."""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
from shardmix import ensemble, perplexity
from shardmix import model as models
from shardmix.jobs import job_args, job_device

args = job_args()
device = job_device()
lm = models.load_causal_lm(args["model"]).to(device)
context = min(args["context"], models.context_length(lm))
nll = {name: perplexity.token_nll(lm, perplexity.load_set(spec, args["max_tokens"]), context,
                                  args["batch_windows"], device)
       for name, spec in args["eval_sets"].items()}
ensemble.write(args["out"], nll)
print(", ".join(f"{name}: {len(a)} tokens, mean NLL {a.mean():.4f}" for name, a in nll.items()))
