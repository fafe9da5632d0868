# Config validation, naming of every artifact, and the input functions the rules share.
import json
import os
import sys
from functools import lru_cache

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)
from shardmix import checksums
from shardmix import config as shardmix_config
from shardmix import corpus as shardmix_corpus
from shardmix import jobs as shardmix_jobs
from shardmix import mixtures as shardmix_mixtures
from shardmix import naming
from shardmix.naming import method_spec, needs_seed


try:
    CFG = shardmix_config.validate(config, source=", ".join(map(str, workflow.configfiles)) or "config")
except shardmix_config.ConfigError as e:
    raise WorkflowError(f"invalid config: {e}")

R = CFG["results"]  # every artifact of this run; two configs with different folders never share one
# where a run keeps its logs: logs/ for the default folder, else inside its own results folder
LOGS = "logs" if R == "results" else f"{R}/logs"
BENCHMARKS = "benchmarks" if R == "results" else f"{R}/benchmarks"
DEMO_CORPUS = "results/demo_corpus"  # built from the demo's packages, shared by every config that reads it
CORPUS = f"{R}/corpus"
MODELS = f"{R}/models"
SCORES = f"{R}/scores"
FOUNDATION_RECORD = f"{CORPUS}/foundation.json"
VALIDATION_SAMPLE = f"{R}/validation/sample.json"
EVAL_GROUPS_RECORD = f"{SCORES}/eval_groups.json"
SEARCH = f"{R}/search"
SELECTION = f"{R}/selection"
SELECTION_UNITS = f"{SELECTION}/pool/units.npz"
SELECTION_POOL_INFO = f"{SELECTION}/pool/pool.json"
METHODS = [method_spec(m) for m in CFG["mixtures"]["methods"]]
SOURCES = {s["name"]: s for s in CFG["sources"]}
GPU = CFG["runtime"]["gpus_per_job"]
# settings that change how a job runs or what it logs, never its result: kept out of params
NOT_RESULT_BEARING = ("checkpoint_every", "log_every", "resident_mb")


def _pretrained_model():
    """model.source pretrained: the checked checkpoint, and whether it must be converted to safetensors."""
    from shardmix.model import ModelError, check_pretrained

    try:
        return check_pretrained(CFG["model"]["path"], shardmix_config.tokenizer_dir(CFG, R))
    except ModelError as e:
        raise WorkflowError(f"model.path: {e}")


PRETRAINED = _pretrained_model() if CFG["model"]["source"] == "pretrained" else None
TOKENIZER = shardmix_config.tokenizer_dir(CFG, R)
SEED_MODEL = CFG["model"]["path"] if PRETRAINED and not PRETRAINED["convert"] else f"{MODELS}/seed"
if PRETRAINED and PRETRAINED["convert"] and CFG["tokenizer"]["path"] is None:
    TOKENIZER = SEED_MODEL  # the converted checkpoint carries the model's tokenizer


def manifest(source):
    return f"{CORPUS}/{source}/manifest.json"


def read_manifest(source):
    """A source's split record: its shards, their sizes and the checksum of the bytes split."""
    try:
        return _read_json(manifest(source))
    except DamagedRecord as e:
        raise WorkflowError(f"{e}; it lists the source's shards. Delete {CORPUS}/{source} and rerun: the source is "
                            "split again and its shards retrained")


def _check_paths():
    """Name a missing input by its config key now, rather than as a rule's missing file later."""
    # a source already split needs its file no more
    paths = [(f"{s['key']}.path", s["path"]) for s in CFG["sources"]
             if not os.path.exists(manifest(s["name"]))]
    paths += [(f"eval_sets[{i}].path", e["path"]) for i, e in enumerate(CFG["eval_sets"])]
    if CFG["selection"] and not os.path.exists(SELECTION_POOL_INFO):
        paths.append(("selection.pool.path", CFG["selection"]["pool"]["path"]))
    missing = [f"{key}: {path} does not exist" for key, path in paths
               if not os.path.exists(path) and not path.startswith(DEMO_CORPUS + "/")]
    if missing:
        raise WorkflowError("\n".join(missing))


_check_paths()


def _check_selection():
    """The selection's embedding model and pool, checked before any job runs."""
    sel = CFG["selection"]
    if not sel:
        return
    if sel["embedding"]["model"]:
        from shardmix.embedding import EmbeddingError, check_encoder

        try:
            check_encoder(sel["embedding"]["model"])
        except EmbeddingError as e:
            raise WorkflowError(str(e))
    elif sel["unit_tokens"] > CFG["model"]["context"]:
        raise WorkflowError(f"selection.unit_tokens: {sel['unit_tokens']} is longer than the seed model's context "
                            f"(model.context = {CFG['model']['context']}), which embeds the candidates")
    if os.path.exists(SELECTION_POOL_INFO) and os.path.exists(sel["pool"]["path"]):
        recorded = _read_json(SELECTION_POOL_INFO)
        if shardmix_corpus.fingerprint(sel["pool"]["path"]) != recorded["fingerprint"] and \
                shardmix_corpus.checksum(sel["pool"]["path"]) != recorded["checksum"]:
            raise WorkflowError(f"selection.pool.path ({sel['pool']['path']}) changed after its candidates were "
                                f"built; to choose from the new pool, delete {SELECTION}/pool (every selection is "
                                "redone and its shard retrained)")

# The config of the last finished run, so `snakemake --report` can refuse another one: a report
# built from a config whose results do not exist would be empty and overwrite a good one.
RUN_RECORD = f"{R}/run_config.json"


def _result_config():
    return json.loads(json.dumps({k: v for k, v in CFG.items() if k != "runtime"}))


def record_run():
    from shardmix import atomic

    atomic.write_text(RUN_RECORD, json.dumps({"configfiles": [str(f) for f in workflow.configfiles],
                                              "config": _result_config()}, indent=2))


def _check_report_config():
    if not any(a == "--report" or a.startswith("--report=") for a in sys.argv):
        return
    if not os.path.exists(RUN_RECORD):
        raise WorkflowError(f"nothing to report: no finished run in {R}/ ({RUN_RECORD} is missing); run snakemake "
                            "first, with the same --configfile")
    run = _read_json(RUN_RECORD)
    if run["config"] != _result_config():
        raise WorkflowError(f"nothing to report for this config: {R}/ holds the results of a run with config "
                            f"{', '.join(run['configfiles']) or '(none)'}; pass it: snakemake --report "
                            f"{R}/report.html --configfile {' '.join(run['configfiles'])}")

# Scripts import the package from the repository, wherever the job runs, with the Python that
# runs Snakemake (the venv's, without the user editing PATH). Where a job runs (device, threads)
# is passed outside `params`, so moving a finished run to a GPU or a cluster is not a change of
# parameters and retrains nothing.
shell.prefix(f"export SHARDMIX_HOME={workflow.basedir} PATH={os.path.dirname(sys.executable)}:$PATH "
             f"PYTHONPATH={workflow.basedir}:${{{{PYTHONPATH:-}}}} SHARDMIX_DEVICE={CFG['runtime']['device']}; ")


def args(**kwargs):
    """Arguments of a workflow script as one JSON string (also what the params trigger compares)."""
    return json.dumps(kwargs, sort_keys=True)


def script(name):
    return f'python "$SHARDMIX_HOME/workflow_scripts/{name}.py"'


def training_settings(section):
    return {k: v for k, v in CFG[section].items() if k not in NOT_RESULT_BEARING}


def run_settings(section):
    """A section's settings that are not results, as the job's last argument. Rules pass it as
    a derived param (a function taking `output`), which Snakemake never compares."""
    return json.dumps({k: v for k, v in CFG[section].items() if k in NOT_RESULT_BEARING})


def read_spec(name):
    """What decides a source's documents. Its path is not part of it: a moved file with the same
    bytes (checksum) is the same source."""
    return {k: v for k, v in SOURCES[name].items() if k in ("name", "format", "text_field", "split", "encoding",
                                                            "revision")}


def split_spec(name):
    """What decides a source's shards; `include` only picks among them, so it is left out."""
    sharding = {k: v for k, v in SOURCES[name]["sharding"].items() if k != "include"}
    return {**read_spec(name), "sharding": sharding}


# --- sources: which ones built the tokenizer and the seed, and whether any changed since ---------


def _read_json(path):
    """A JSON file the workflow reads at parse time, checked against its seal; a damaged one
    raises DamagedRecord naming it, and the caller, who knows what it holds, says what to do."""
    why = checksums.verify(path)
    if why is None:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            why = f"not valid JSON: {e}"
    raise DamagedRecord(f"{path}: damaged ({why})")


class DamagedRecord(WorkflowError):
    pass


def _foundation():
    """The sources the tokenizer and the seed are built from: `foundation` when set, else the
    ones recorded when they were first built, else every source."""
    if CFG["foundation"]:
        return list(CFG["foundation"])
    if os.path.exists(FOUNDATION_RECORD):
        try:
            recorded = _read_json(FOUNDATION_RECORD)["sources"]
        except (DamagedRecord, KeyError, TypeError) as e:
            # rebuilding it from today's sources could silently retrain every model
            raise WorkflowError(f"{e if isinstance(e, DamagedRecord) else FOUNDATION_RECORD + ': no list of sources'}"
                                "; it names the sources the tokenizer and the seed were built from. Set `foundation` "
                                "to those sources (that rewrites the record), or delete the file to record every "
                                "source of `corpus`")
        gone = [s for s in recorded if s not in SOURCES]
        if gone:
            raise WorkflowError(
                f"{FOUNDATION_RECORD}: the tokenizer and seed were built from source(s) {', '.join(gone)}, which "
                "`corpus` no longer lists. Put them back, or set `foundation` to the sources to rebuild "
                "the tokenizer, the seed and every model from (on purpose).")
        return recorded
    return list(SOURCES)


FOUNDATION = _foundation()


def _read_record(path):
    """A choice an earlier run recorded, read once, when the workflow is parsed: Snakemake deletes
    a job's output before it reruns the job, so a read while the record is being rewritten would
    see no record at all. The rewritten record holds what this run derived from the one read here.
    A damaged record is named and made again from this run's settings (its rule is forced)."""
    if not os.path.exists(path):
        return None
    try:
        return _read_json(path)
    except DamagedRecord as e:
        print(f"WARNING: {e}; it is made again from this run's settings", file=sys.stderr)
        REBUILD.add(path)
        return None


REBUILD = set()  # existing outputs the run must make again (shardmix.checksums, shardmix.jobs)


RECORDED_GROUPS = (_read_record(EVAL_GROUPS_RECORD) or {}).get("groups", [])
RECORDED_SAMPLE = _read_record(VALIDATION_SAMPLE)
_check_report_config()


def _check_sources_unchanged():
    """A source whose bytes changed after it was split would silently mix old and new results."""
    changed = []
    for name, spec in SOURCES.items():
        path = manifest(name)
        if not os.path.exists(path) or not os.path.exists(spec["path"]):
            continue
        recorded = read_manifest(name)
        if recorded.get("revision") != spec["revision"]:
            continue  # re-split on purpose
        if shardmix_corpus.fingerprint(spec["path"]) == recorded.get("fingerprint"):
            continue
        now = shardmix_corpus.checksum(spec["path"])
        if now != recorded.get("checksum"):
            changed.append(f"  {spec['key']} ({spec['path']}): checksum {recorded.get('checksum', '?')[:12]} when "
                           f"split, {now[:12]} now")
    if changed:
        raise WorkflowError(
            "corpus source(s) changed after they were split; their shard models were trained on the old text:\n"
            + "\n".join(changed) + "\nEither restore the file and add the new text as a new source (append it to "
            "`corpus`: one split and one training per new shard), or rebuild on purpose: raise that source's "
            "`revision` (re-splits it and retrains its shards; for a `foundation` source also the tokenizer, "
            "the seed and every model).")


_check_sources_unchanged()
_check_selection()


# --- shards: read from the split manifests ---------------------------------------------------------


def shards():
    """Shards of this run in the order they were added. Only `rule all` calls this: it waits for
    every source's split (checkpoint); every other function reads the manifests directly, so a
    job's inputs never list other sources' manifests and adding a source leaves them unchanged."""
    for source in SOURCES:
        checkpoints.split_source.get(source=source)
    return list(shard_sources())


def shard_sources():
    """Shard -> source, in the order shards were added, checked for size."""
    stamps = tuple((s, os.path.getmtime(manifest(s)) if os.path.exists(manifest(s)) else None) for s in SOURCES)
    return _checked_shards(stamps)


@lru_cache  # every job's input function asks: read and check each version (mtime) of the manifests once
def _checked_shards(stamps):
    from shardmix import sharding

    manifests = {s: read_manifest(s) for s, mtime in stamps if mtime is not None}
    missing = [s for s, mtime in stamps if mtime is None]
    if missing:
        raise WorkflowError(f"source(s) {', '.join(missing)} not split yet ({manifest(missing[0])} is missing)")
    try:
        order = sharding.check_shards(
            {s: (SOURCES[s], m) for s, m in manifests.items()}, FOUNDATION, CFG["shard_training"]["tokens"],
            CFG["model"]["context"], CFG["evaluation"]["min_tokens"], seed_needed=CFG["model"]["source"] == "pretrain")
    except sharding.ShardSizeError as e:
        raise WorkflowError(str(e))
    return order


def shard_source(shard):
    return shard_sources()[shard]


def shard_model(shard):
    return f"{MODELS}/shards/{shard}"


def heldout_tokens(shard):
    return f"{CORPUS}/{shard_source(shard)}/tokens/{shard}.heldout.npy"


def train_tokens(shard):
    if shard in SELECTIONS:
        return f"{SELECTION}/shards/{shard}/train.npy"
    return f"{CORPUS}/{shard_source(shard)}/tokens/{shard}.train.npy"


def shard_data(shard):
    """What a shard model is trained from: its source's split, or the selection that made it."""
    force_rebuilds()
    return f"{SELECTION}/shards/{shard}" if shard in SELECTIONS else manifest(shard_source(shard))


# --- selection: each method and target makes one new shard, <method>-<target> -----------------------

SELECTIONS = {f"{m}-{t['name']}": {"method": m, "target": t["name"]}
              for t in (CFG["selection"] or {}).get("targets", []) for m in CFG["selection"]["methods"]}


def selection_shards():
    """Selected shard -> its method and target, checked against this run's shards and eval sets."""
    sets = eval_sets()
    for i, target in enumerate(CFG["selection"]["targets"]):
        if target["name"] not in sets:
            raise WorkflowError(f"selection.targets[{i}].name: {target['name']!r} is neither an eval set of this "
                                f"run nor given a path (eval sets: {', '.join(sets)})")
    clash = [s for s in SELECTIONS if s in sets]
    if clash:
        raise WorkflowError(f"selection: the selected shard name {clash[0]!r} is also a shard or eval set of the "
                            "run; rename the target")
    return SELECTIONS


def protected_files():
    """Token files no selected candidate may repeat: the held-out part of every shard of every
    source (included or not) and every extra eval set."""
    files = [f"{CORPUS}/{source}/tokens/{shard}.heldout.npy"
             for source in SOURCES for shard in read_manifest(source)["shards"]]
    return sorted(files + [f"{R}/eval_sets/{e['name']}.npy" for e in CFG["eval_sets"]])


def eval_sets():
    """Eval set name -> token file: every shard's held-out part, then the extra sets."""
    sets = {s: heldout_tokens(s) for s in shard_sources()}
    for extra in CFG["eval_sets"]:
        if extra["name"] in sets:
            raise WorkflowError(f"eval_sets: name '{extra['name']}' is also a shard's name; rename it")
        sets[extra["name"]] = f"{R}/eval_sets/{extra['name']}.npy"
    return sets


def eval_set_spec(name):
    """What scoring needs of an eval set: its token file and, for a held-out set, the length of
    the chunks it is made of (no evaluation window crosses the join of two chunks)."""
    source = shard_sources().get(name)
    return {"path": eval_sets()[name], "segment": SOURCES[source]["sharding"]["chunk_tokens"] if source else None}


def eval_set_inputs(names):
    """The files that stand for these eval sets: an extra set's token file; for a held-out set,
    its source's manifest (held-out sets live in the source's token folder)."""
    extra = {e["name"] for e in CFG["eval_sets"]}
    return sorted({f"{R}/eval_sets/{s}.npy" if s in extra else manifest(shard_source(s)) for s in names})


def eval_groups():
    """Group id -> eval sets. An evaluation job merges each model of its batch once and scores it
    on every set of one group. Groups are the sets that joined the run together (recorded in
    results/scores/eval_groups.json), so a shard or eval set added later forms a new group and
    never changes the jobs that already ran."""
    sets = list(eval_sets())
    groups = [[s for s in group if s in sets] for group in RECORDED_GROUPS]
    seen = {s for group in groups for s in group}
    groups.append([s for s in sets if s not in seen])
    return {f"g{i}": group for i, group in enumerate(groups) if group}


def full_model(mixture):
    return f"{MODELS}/full/{mixture}"


def _training_tokenizer():
    """Where a continued pretraining finds its tokenizer: the seed's folder, unless a pretrained
    model's folder holds none (tokenizer.path names another): then that folder, named in the
    arguments (only then, so runs that always worked keep their parameters)."""
    from shardmix.tokenizer import TOKENIZER_FILES

    if PRETRAINED and not PRETRAINED["convert"] and \
            not any(os.path.exists(os.path.join(SEED_MODEL, f)) for f in TOKENIZER_FILES):
        return {"tokenizer": TOKENIZER}
    return {}


def shard_training(shard):
    """Arguments of a shard model's training (compared by Snakemake, recorded in the model)."""
    return dict(seed=SEED_MODEL, sources=[train_tokens(shard)], training=training_settings("shard_training"),
                context=CFG["model"]["context"], out=shard_model(shard), label=shard, **_training_tokenizer())


def full_training(mixture):
    """Arguments of a really trained mixture. A uniform one gives each member the shard budget;
    a weighted one of k members k budgets in all, member i w_i * k of them."""
    weights = naming.weights(mixture)
    run = dict(seed=SEED_MODEL, sources=[train_tokens(s) for s in weights],
               training=training_settings("shard_training"), context=CFG["model"]["context"],
               out=full_model(mixture), label=f"full/{mixture}", **_training_tokenizer())
    if naming.is_weighted(mixture):
        total = len(weights) * CFG["shard_training"]["tokens"]
        run["budgets"] = [max(1, round(w * total)) for w in weights.values()]
    return run


def _entry(kind, mixture="", method=None):
    """One model of an evaluation batch: what to load (dirs) and, for a merge, how to merge it."""
    entry = {"model": naming.model_id(kind, mixture, method["label"] if method else "linear"), "kind": kind,
             "shards": naming.SEP.join(naming.members(mixture)) if mixture else "",
             "weights": naming.weights_column(mixture) if mixture else "", "method": ""}
    if kind == "seed":
        entry["dirs"] = [SEED_MODEL]
    elif kind == "shard":
        entry["dirs"] = [shard_model(mixture)]
    elif kind == "full":
        entry["dirs"] = [full_model(mixture)]
    else:
        weights = naming.weights(mixture)
        entry.update(method=method["label"], dirs=[shard_model(s) for s in weights], merge={
            "weights": list(weights.values()), "method": method,
            "seed": SEED_MODEL if needs_seed(method) else None})
    return entry


def _merged_entries(mixture):
    if len(naming.members(mixture)) == 1:
        return [_entry("shard", mixture)]
    return [_entry("merged", mixture, m) for m in METHODS]


@lru_cache
def _plan(shard_tuple):
    """Scored and really-trained mixtures of these shards, the evaluation batches, and the
    validation sample's picks (kept from the recorded sample, results/validation/sample.json)."""
    order, size = list(shard_tuple), CFG["mixtures"]["batch_size"]
    try:
        candidates = shardmix_mixtures.candidate_mixtures(order, CFG["mixtures"])
        picks = shardmix_mixtures.validation_sample(candidates, CFG["validation"]["random"], order, RECORDED_SAMPLE)
        # the search's baseline, uniform over all shards, is trained with the sample (it trains while
        # the rest is scored) and gives the calibration a point where the search's mixtures are
        baseline = [naming.mixture_name(order)] if CFG["validation"]["search"] and len(order) > 1 else []
        validated = shardmix_mixtures.validation_mixtures(order, picks + baseline, CFG["validation"])
    except shardmix_mixtures.MixtureError as e:
        raise WorkflowError(str(e))
    # a trained mixture the candidates no longer list (e.g. a pick of a pool-wide sample redrawn
    # after a shard was added) is still scored, beside the mixtures of its kind
    scored = {**{m: "weighted" if naming.is_weighted(m) else "subset" for m in validated}, **candidates}
    plan = {"seed": [_entry("seed")]}
    for batch, names in shardmix_mixtures.batches(order, scored, size).items():
        plan[batch] = [e for m in names for e in _merged_entries(m)]
    # '@' cannot occur in a shard name, so these ids never clash with the batches above
    full = {m: "subset" for m in validated}
    for batch, names in shardmix_mixtures.batches(order, full, size, prefix="full@", singles=False).items():
        plan[batch] = [_entry("full", m) for m in names]
    plan.update(_selection_batches(order, size))
    return plan, validated, picks


def _selection_batches(order, size):
    """A selected shard's batches: its model alone, paired with each shard of the run, and added
    to all of them (uniform weights), as selection.mixtures asks."""
    if not CFG["selection"]:
        return {}
    how = CFG["selection"]["mixtures"]
    out = {}
    for shard in selection_shards():
        names = [shard] + ([naming.mixture_name([shard, s]) for s in order] if how["pairs"] else [])
        if how["with_all"] and len(order) > 1:
            names.append(naming.mixture_name(order + [shard]))
        names = list(dict.fromkeys(names))
        for i in range(0, len(names), size):
            out[f"{shard}.s{i // size:03d}"] = [e for m in names[i:i + size] for e in _merged_entries(m)]
    return out


def batches():
    return _plan(tuple(shard_sources()))[0]


def validated_mixtures():
    return _plan(tuple(shard_sources()))[1]


def validation_picks():
    return _plan(tuple(shard_sources()))[2]


def score_files():
    force_rebuilds()
    return [f"{SCORES}/{g}/{b}.csv" for g in eval_groups() for b in batches()]


def search_targets():
    """Search target name -> {eval set: weight}, checked against this run's eval sets."""
    sets = list(eval_sets())
    targets = {}
    for i, target in enumerate(CFG["search"]["targets"]):
        chosen = target["eval_sets"]
        chosen = dict.fromkeys(sets, 1.0) if chosen is None else (
            dict.fromkeys(chosen, 1.0) if isinstance(chosen, list) else dict(chosen))
        unknown = [s for s in chosen if s not in sets]
        if unknown:
            raise WorkflowError(f"search.targets[{i}].eval_sets names {unknown[0]!r}, which is not an eval set of "
                                f"this run (eval sets: {', '.join(sets)})")
        total = sum(chosen.values())
        targets[target["name"]] = {s: w / total for s, w in chosen.items()}
    return targets


def uniform_all():
    return naming.mixture_name(list(shard_sources()))


VALIDATION_OUTPUTS = [f"{R}/validation/{name}" for name in
                      ("agreement.csv", "agreement_naive.csv", "agreement.html", "scatter.png", "cost.png",
                       "calibration.csv")] + [f"{R}/predictions.csv"]


def _rebuilds():
    """Existing outputs the run must make again: damaged ones (a seal no longer matches) and
    models whose recorded arguments differ from this run's (a model Snakemake kept no record
    for, as after a kill between its save and Snakemake's bookkeeping, is still compared)."""
    found = set(REBUILD)
    for damage in checksums.scan(R):
        print(f"WARNING: {damage}; it is rebuilt", file=sys.stderr)
        found.add(str(damage.path))
    if not all(os.path.exists(manifest(s)) for s in SOURCES):
        return found  # models follow the splits: compared once every source is split
    planned = {shard_model(s): args(**shard_training(s)) for s in [*shard_sources(), *SELECTIONS]}
    known = set(shard_sources()) | set(SELECTIONS)
    if os.path.isdir(f"{MODELS}/full"):
        for name in os.listdir(f"{MODELS}/full"):
            if not name.endswith(checksums.SKIPPED) and all(m in known for m in naming.members(name)):
                planned[full_model(name)] = args(**full_training(name))
    for path in shardmix_jobs.stale(planned):
        print(f"WARNING: {path} was made with other settings than this run's; it is made again", file=sys.stderr)
        found.add(path)
    return found


def _warn_removed_shards():
    """A shard left out of `include` after it was scored leaves its eval-set group and every
    batch it shared with later shards: those are scored again (and again if it comes back).
    Say so before the jobs start (keeping removed shards in the plan is left to the planner's
    rework, issue 18)."""
    removed = sorted({s for group in RECORDED_GROUPS for s in group} - set(eval_sets()))
    if removed:
        print(f"WARNING: shard(s) or eval set(s) {', '.join(removed)} left the run after they were scored: the "
              "eval-set groups and mixture batches they were part of are scored again without them, and again "
              "if they come back. Only time is spent: a mixture's scores do not change (its models are kept).",
              file=sys.stderr)


_FORCED = set()  # the DAGs (one per Snakemake invocation) given their rebuilds


def force_rebuilds():
    """Have Snakemake rebuild what `_rebuilds` finds, once per DAG. Called from the input
    functions of `all` and of the rules that read models, token files and scores, so a run
    toward any of their outputs checks too. Forced, not targeted: a damaged or stale artifact no
    job of this run needs is left alone."""
    if id(workflow.dag) not in _FORCED:
        _FORCED.add(id(workflow.dag))
        workflow.dag.forcefiles.update(_rebuilds())


def final_outputs(wildcards):
    shards()
    _warn_removed_shards()
    force_rebuilds()
    outputs = [f"{R}/scores.csv", f"{R}/scores.html", f"{R}/plots/heatmap.png", f"{R}/plots/ranking.png",
               f"{CORPUS}/shards.csv", EVAL_GROUPS_RECORD]
    if CFG["validation"]["random"]:
        outputs.append(VALIDATION_SAMPLE)
    if validated_mixtures():
        outputs += VALIDATION_OUTPUTS
    if CFG["selection"]:
        outputs += [f"{SELECTION}/summary.csv"] + [f"{SELECTION}/{t['name']}.png" for t in CFG["selection"]["targets"]]
    if CFG["autoscale"]:
        outputs += autoscale_outputs()
    if CFG["search"]["targets"]:
        outputs += [f"{SEARCH}/best_mixtures.csv", f"{SEARCH}/weights.png"]
        if CFG["validation"]["search"]:
            checkpoints.best_mixtures.get()  # the searched mixtures decide what validate_search trains
            outputs.append(f"{SEARCH}/validation.csv")
    return outputs
