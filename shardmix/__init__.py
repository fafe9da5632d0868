"""shardmix: score data mixtures by merging per-shard continued-pretraining models."""
