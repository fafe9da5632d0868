# shardmix: score data mixtures by merging per-shard continued-pretraining models.
# Flow: corpus -> tokenizer -> shards (train / held-out / seed parts) -> seed model
#       -> one model per shard -> merged mixtures scored by perplexity -> table and plots.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/results.smk"
include: "rules/validate.smk"


rule all:
    input:
        final_outputs,
