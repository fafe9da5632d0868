"""Rule convert_seed: a user's PyTorch .bin checkpoint saved once as safetensors, in its own
dtype, with its tokenizer (merging reads safetensors tensor by tensor)."""
from transformers import AutoModelForCausalLM

from shardmix import model as models
from shardmix import tokenizer
from shardmix.jobs import job_args

args = job_args()
lm = AutoModelForCausalLM.from_pretrained(args["model"], local_files_only=True, dtype="auto")
dtype = next(p.dtype for p in lm.parameters() if p.is_floating_point())
models.save(lm, tokenizer.load(args["tokenizer"]), args["out"], dtype=dtype)
print(f"converted {args['model']} ({dtype}) to safetensors in {args['out']}")
