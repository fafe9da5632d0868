# The planner (shardmix.plan) and the little glue to Snakemake the rules share: checkpoints,
# forced rebuilds, the run record, the shell prefix. Every other question is asked of PLAN.
import os
import sys

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)
from shardmix import config as shardmix_config
from shardmix import naming, preemption
from shardmix.plan import Planner
from shardmix.plan.jobs import args
from shardmix.plan.layout import DEMO_CORPUS


try:
    CFG = shardmix_config.check(config, source=", ".join(map(str, workflow.configfiles)) or "config")
except shardmix_config.ConfigError as e:
    raise WorkflowError(f"invalid config: {e}")

PLAN = Planner(CFG, workflow.configfiles, sys.argv)
L = PLAN.layout  # every artifact of this run; two configs with different folders never share one
RESULTS = L.results
GPU = PLAN.gpu

# Scripts import the package from the repository, wherever the job runs, with the Python that
# runs Snakemake (the venv's, without the user editing PATH). Where a job runs (device, threads)
# is passed outside `params`, so moving a finished run to a GPU or a cluster is not a change of
# parameters and retrains nothing. `exec env` makes the job's shell become its Python: a signal
# to the job reaches the process that does the work, and no orphan outlives its job.
shell.prefix(f"export SHARDMIX_HOME={workflow.basedir} PATH={os.path.dirname(sys.executable)}:$PATH "
             f"PYTHONPATH={workflow.basedir}:${{{{PYTHONPATH:-}}}} SHARDMIX_DEVICE={CFG['runtime']['device']}; "
             "exec env ")
# Ctrl-C, SIGTERM and SLURM's warning signal reach the running jobs (shardmix.preemption)
preemption.forward_to_jobs(lambda: list(getattr(shell, "_processes", {}).values()))


def script(name):
    return f'python "$SHARDMIX_HOME/workflow_scripts/{name}.py"'


def record_run():
    """The config of the last finished run, so `snakemake --report` can refuse another one."""
    from shardmix import atomic

    atomic.write_text(L.run_record, PLAN.run_record())


_WARM = []  # (socket, process) of this run's warm-start server


def start_warm():
    """Jobs that run on this machine fork from one process that has imported torch and
    transformers (shardmix.warm), unless runtime.warm_start is off or jobs run elsewhere."""
    from shardmix import warm

    if CFG["runtime"]["warm_start"] and workflow.local_exec:
        _WARM.append(warm.start(workflow.basedir, f"{L.logs}/warm_start.log"))
        os.environ[warm.ENV] = _WARM[0][0]


def watch_progress():
    """A progress line every minute: running jobs, their logs' last step and ETA, the run's time left."""
    from shardmix import progress

    progress.watch(workflow)


def stop_warm():
    from shardmix import warm

    while _WARM:
        warm.stop(*_WARM.pop())


def shards():
    """Shards of this run in the order they were added. Only `rule all` calls this: it waits for
    every source's split (checkpoint); the planner reads the manifests directly, so a job's
    inputs never list other sources' manifests and adding a source leaves them unchanged."""
    for source in PLAN.sources:
        checkpoints.split_source.get(source=source)
    return list(PLAN.shard_sources())


_FORCED = set()  # the DAGs (one per Snakemake invocation) given their rebuilds


def force_rebuilds():
    """Have Snakemake rebuild what the planner finds damaged or stale, once per DAG. Called from
    the input functions of `all` and of the rules that read models, token files and scores, so a
    run toward any of their outputs checks too. Forced, not targeted: a damaged or stale
    artifact no job of this run needs is left alone."""
    if id(workflow.dag) not in _FORCED:
        _FORCED.add(id(workflow.dag))
        workflow.dag.forcefiles.update(PLAN.rebuilds())


VALIDATION_OUTPUTS = [f"{RESULTS}/validation/{name}" for name in
                      ("agreement.csv", "warnings.txt", "regression.csv", "pairs.csv", "agreement.html", "scatter.png", "cost.png",
                       "calibration.csv")] + [f"{RESULTS}/predictions.csv"]


def final_outputs(wildcards):
    shards()
    PLAN.warn_removed()
    force_rebuilds()
    outputs = [f"{RESULTS}/scores.parquet", f"{RESULTS}/plots/heatmap.png", f"{RESULTS}/plots/ranking.png",
               f"{L.corpus}/shards.csv", L.eval_groups_record, f"{RESULTS}/summary.csv", f"{RESULTS}/summary.html"]
    if PLAN.scores_csv_wanted():
        outputs += [f"{RESULTS}/scores.csv", f"{RESULTS}/scores.html"]
    if CFG["validation"]["random"]:
        outputs.append(L.validation_sample)
    if CFG["model"]["source"] == "pretrain":
        outputs.append(f"{RESULTS}/validation/seed_overlap.csv")
    if PLAN.validated_mixtures():
        outputs += VALIDATION_OUTPUTS
    if CFG["selection"]:
        outputs += [f"{L.selection}/summary.csv"] + [f"{L.selection}/{t['name']}.png"
                                                     for t in CFG["selection"]["targets"]]
    if CFG["autoscale"]:
        outputs += AUTOSCALE.outputs()
        if CFG["autoscale"]["check"]:
            checkpoints.autoscale_fit.get()  # the projected weights decide what the check trains
            outputs.append(f"{AUTOSCALE.folder}/check.csv")
    if CFG["search"]["targets"]:
        outputs += [f"{L.search}/best_mixtures.csv", f"{L.search}/weights.png"]
        if CFG["validation"]["search"]:
            checkpoints.best_mixtures.get()  # the searched mixtures decide what validate_search trains
            outputs.append(f"{L.search}/validation.csv")
    return outputs
