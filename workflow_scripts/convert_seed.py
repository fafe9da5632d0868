"""Rule convert_seed: a user's PyTorch .bin checkpoint saved once as safetensors, in its own
dtype, with its tokenizer (merging reads safetensors tensor by tensor)."""
from shardmix import model as models
from shardmix.jobs import job_args

args = job_args()
dtype = models.convert(args["model"], args["tokenizer"], args["out"])
print(f"converted {args['model']} ({dtype}) to safetensors in {args['out']}")
