"""Rule shard_sizes: results/corpus/shards.csv, every shard's size and whether it fits the budget."""
import json

import pandas as pd

from shardmix import sharding
from shardmix.jobs import job_args

args = job_args()
manifests = {s: json.load(open(path)) for s, path in args["manifests"].items()}
table = pd.DataFrame(sharding.shard_rows(manifests, args["include"], args["budget"], args["context"],
                                         args["min_tokens"]))
table.to_csv(args["out"], index=False)
print(table.to_string(index=False))
