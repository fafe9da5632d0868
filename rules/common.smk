# Config validation, naming of every artifact, and the input functions the rules share.
import json
import os
import sys
from functools import lru_cache

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)
from shardmix import config as shardmix_config
from shardmix import mixtures as shardmix_mixtures
from shardmix.naming import SEP, mixture_name, model_id


try:
    CFG = shardmix_config.validate(config, source=", ".join(map(str, workflow.configfiles)) or "config")
except shardmix_config.ConfigError as e:
    raise WorkflowError(f"invalid config: {e}")

R = "results"
DEMO_CORPUS = f"{R}/demo_corpus"
CORPUS = f"{R}/corpus"
MODELS = f"{R}/models"
SCORES = f"{R}/scores"
TOKENIZER = shardmix_config.tokenizer_dir(CFG, R)
SEED_MODEL = f"{MODELS}/seed" if CFG["model"]["source"] == "pretrain" else CFG["model"]["path"]
GPU = CFG["runtime"]["gpus_per_job"]


def _check_paths():
    """Name a missing input by its config key now, rather than as a rule's missing file later."""
    paths = [("corpus.path", CFG["corpus"]["path"])]
    paths += [(f"eval_sets[{i}].path", e["path"]) for i, e in enumerate(CFG["eval_sets"])]
    for key, path in paths:
        if not os.path.exists(path) and not path.startswith(DEMO_CORPUS + "/"):
            raise WorkflowError(f"{key}: {path} does not exist")
    if CFG["model"]["source"] == "pretrained":
        from shardmix.model import ModelError, load_config

        try:
            load_config(CFG["model"]["path"])
        except ModelError as e:
            raise WorkflowError(f"model.path: {e}")


_check_paths()

# Scripts import the package from the repository, wherever the job runs. Where a job runs
# (device, threads) is passed outside `params`, so moving a finished run to a GPU or a cluster
# does not count as a change of parameters and retrains nothing.
shell.prefix(f"export PYTHONPATH={workflow.basedir}:${{{{PYTHONPATH:-}}}} SHARDMIX_DEVICE={CFG['runtime']['device']}; ")


def args(**kwargs):
    """Arguments of a workflow script as one JSON string (also what the params trigger compares)."""
    return json.dumps(kwargs, sort_keys=True)


def shard_model(shard):
    return f"{MODELS}/shards/{shard}"


def heldout_tokens(shard):
    return f"{CORPUS}/tokens/{shard}.heldout.npy"


def train_tokens(shard):
    return f"{CORPUS}/tokens/{shard}.train.npy"


def shards():
    """Shards of this run, in the order they were added (sharding.include), checked for size."""
    path = checkpoints.split_corpus.get().output.manifest
    return list(_checked_shards(path, os.path.getmtime(path)))


@lru_cache  # every job's input function asks: read and check each version (mtime) of the manifest once
def _checked_shards(path, mtime):
    with open(path) as f:
        manifest = json.load(f)
    available = manifest["shards"]
    wanted = CFG["sharding"]["include"]
    names = list(wanted) if wanted else sorted(available)
    missing = [n for n in names if n not in available]
    if missing:
        raise WorkflowError(f"sharding.include names shard '{missing[0]}', which the corpus does not have "
                            f"(shards: {', '.join(sorted(available))})")
    budget = CFG["shard_training"]["tokens"]
    context = CFG["model"]["context"]
    if CFG["model"]["source"] == "pretrain" and manifest["seed_tokens"] <= context:
        raise WorkflowError(f"sharding.seed_fraction leaves {manifest['seed_tokens']} seed tokens, too little "
                            "text to pretrain the seed model")
    for n in names:
        info = available[n]
        if info["train_tokens"] < budget + 1 or info["train_tokens"] <= context:
            raise WorkflowError(
                f"shard '{n}' has {info['train_tokens']} training tokens, too little text to train for "
                f"shard_training.tokens = {budget}; lower it, or leave the shard out with sharding.include")
        if info["heldout_tokens"] < CFG["evaluation"]["min_tokens"]:
            raise WorkflowError(
                f"shard '{n}' has {info['heldout_tokens']} held-out tokens, too little text to evaluate "
                f"(evaluation.min_tokens = {CFG['evaluation']['min_tokens']}); raise "
                "sharding.heldout_fraction or leave the shard out with sharding.include")
    return tuple(names)


def eval_sets():
    """Eval set name -> token file: every shard's held-out part, then the extra sets."""
    sets = {s: heldout_tokens(s) for s in shards()}
    for extra in CFG["eval_sets"]:
        if extra["name"] in sets:
            raise WorkflowError(f"eval_sets: name '{extra['name']}' is also a shard's name; rename it")
        sets[extra["name"]] = f"{R}/eval_sets/{extra['name']}.npy"
    return sets


def full_model(mixture):
    return f"{MODELS}/full/{mixture_name(mixture)}"


def _entry(kind, members, dirs):
    return {"model": model_id(kind, members), "kind": kind, "shards": mixture_name(members), "dirs": dirs}


@lru_cache
def _plan(shard_tuple):
    """Scored and really-trained mixtures of these shards, and the evaluation batches."""
    order, size = list(shard_tuple), CFG["mixtures"]["batch_size"]
    try:
        candidates = shardmix_mixtures.candidate_mixtures(order, CFG["mixtures"])
        validated = shardmix_mixtures.validation_mixtures(order, candidates, CFG["validation"])
    except shardmix_mixtures.MixtureError as e:
        raise WorkflowError(str(e))
    scored = sorted(set(candidates) | set(validated), key=lambda m: (len(m), m))
    plan = {"seed": [_entry("seed", (), [SEED_MODEL])]}
    for batch, members in shardmix_mixtures.batches(order, scored, size).items():
        plan[batch] = [_entry("shard" if len(m) == 1 else "merged", m, [shard_model(s) for s in m])
                       for m in members]
    # '@' cannot occur in a shard name, so these ids never clash with the batches above
    for batch, members in shardmix_mixtures.batches(order, validated, size, prefix="full@", singles=False).items():
        plan[batch] = [_entry("full", m, [full_model(m)]) for m in members]
    return plan, validated


def batches():
    return _plan(tuple(shards()))[0]


def validated_mixtures():
    return _plan(tuple(shards()))[1]


def score_files():
    return [f"{SCORES}/{e}/{b}.csv" for e in eval_sets() for b in batches()]


VALIDATION_OUTPUTS = [f"{R}/validation/{name}" for name in
                      ("agreement.csv", "agreement_naive.csv", "agreement.html", "scatter.png", "cost.png")]


def final_outputs(wildcards):
    outputs = [f"{R}/scores.csv", f"{R}/scores.html", f"{R}/plots/heatmap.png", f"{R}/plots/ranking.png"]
    return outputs + (VALIDATION_OUTPUTS if validated_mixtures() else [])
