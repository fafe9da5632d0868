# shardmix: score data mixtures by merging per-shard continued-pretraining models.
# Flow: corpus sources -> tokenizer -> shards (train / held-out / seed parts) -> seed model
#       -> one model per shard -> merged mixtures scored by perplexity -> table and plots.
from snakemake.utils import min_version

min_version("9.0")


# The demo's config, unless the command line names one: then that file is the whole config
# (`--configfile my.yaml` never inherits the demo's shards, eval sets or validation sample).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"



include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/results.smk"
include: "rules/validate.smk"
include: "rules/search.smk"


# the report opens on the run's answers once rule summary has written them
report: f"{RESULTS}/summary.rst" if os.path.exists(f"{RESULTS}/summary.rst") else "report/workflow.rst"


if CFG["selection"]:

    include: "rules/select.smk"


if CFG["autoscale"]:

    include: "rules/autoscale.smk"


# records of choices and small tables: on a cluster, not worth a job of their own
localrules:
    record_foundation,
    record_validation_sample,
    record_eval_groups,
    best_mixtures,
    summary,
    shard_sizes,


onstart:
    start_warm()
    watch_progress()


onsuccess:
    stop_warm()
    record_run()


onerror:
    stop_warm()


rule all:
    input:
        final_outputs,
