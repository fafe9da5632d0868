"""Rules record_foundation and record_validation_sample: a choice the run made once (the sources
the tokenizer and seed are built from; the validation sample's picks), kept so that later runs,
with more sources or shards, make the same choice (read back by rules/common.smk)."""
from shardmix.jobs import job_args, write_json

args = job_args()
write_json(args["out"], args["record"])
print(f"{args['out']}: {args['record']}")
