"""The planner: one object per run that the rule files ask what each job reads, writes and is
passed.

It reads the config (validated) and the disk: the sources' split manifests, the records earlier
runs left (foundation, eval-set groups, validation sample), the seals of finished artifacts.
Everything that follows from the shards (eval sets, groups, batches, each group's specs) is
derived once per version of the manifests (their file times; shardmix.plan.view), so planning a
job costs the same whatever the number of shards, and each evaluation job's eval-set table is
serialized once per group, not once per job. Paths are relative to the working directory, as
Snakemake's are.
"""

from __future__ import annotations

import json
import os
import sys

from shardmix import checksums, naming
from shardmix import config as shardmix_config
from shardmix import corpus as shardmix_corpus
from shardmix import jobs as shardmix_jobs
from shardmix import merging
from shardmix.plan.errors import DamagedRecord, PlanError
from shardmix.plan.jobs import TrainingJob, args
from shardmix.plan.layout import DEMO_CORPUS, Layout
from shardmix.plan.records import read_json, read_record
from shardmix.plan.view import ShardView

# settings that change how a job runs or what it logs, never its result: kept out of params
# runtime settings a job gets as its last argument (training: shardmix.training.Options)
TRAINING_RUNTIME = ("log_every", "checkpoint_every", "checkpoint_minutes", "micro_batch_size", "compile",
                    "activation_checkpointing", "attention")
EVALUATION_RUNTIME = ("resident_mb",)
CSV_ROWS = 1_000_000  # evaluation.scores_csv auto: above this the table is Parquet only


def _moved(piece: list, then: str, now: str) -> list:
    """A recorded piece of a source that has moved since (same bytes: checksum) at its new place."""
    file = piece[0]
    if then != now and not shardmix_corpus.is_glob(then) and (file == then or file.startswith(then.rstrip("/") + "/")):
        file = now + file[len(then):]
    return [file, *piece[1:]]


class Planner:
    def __init__(self, cfg: dict, configfiles=(), argv=()):
        """Checks the config against the disk at once (missing inputs, changed sources, the
        selection's pool, the report's run), so a run that cannot work fails before any job."""
        self.cfg = cfg
        self.configfiles = [str(f) for f in configfiles]
        self.layout = layout = Layout(cfg["results"])
        self.sources = {s["name"]: s for s in cfg["sources"]}
        self.methods = [merging.method(m).spec() for m in cfg["mixtures"]["methods"]]
        self.gpu = cfg["runtime"]["gpus_per_job"]
        self._parts = {}
        self.rebuild = set()  # existing outputs the run must make again (checksums, job records)
        self.pretrained = self._pretrained_model() if cfg["model"]["source"] == "pretrained" else None
        self.tokenizer = shardmix_config.tokenizer_dir(cfg, layout.results)
        convert = self.pretrained and self.pretrained["convert"]
        self.seed_model = cfg["model"]["path"] if self.pretrained and not convert else f"{layout.models}/seed"
        if convert and cfg["tokenizer"]["path"] is None:
            self.tokenizer = self.seed_model  # the converted checkpoint carries the model's tokenizer
        self.selections = {f"{m}-{t['name']}": {"method": m, "target": t["name"]}
                           for t in (cfg["selection"] or {}).get("targets", []) for m in cfg["selection"]["methods"]}
        self._check_paths()
        self.foundation = self._foundation()
        self.recorded_groups = (read_record(layout.eval_groups_record, self.rebuild) or {}).get("groups", [])
        self.recorded_sample = read_record(layout.validation_sample, self.rebuild)
        self._check_report_config(argv)
        self._check_sources_unchanged()
        self._check_selection()
        self._stamps, self._view = None, None

    # --- the config ------------------------------------------------------------------------------

    def _pretrained_model(self):
        """model.source pretrained: the checked checkpoint, and whether it must be converted."""
        from shardmix.model import ModelError, check_pretrained

        try:
            return check_pretrained(self.cfg["model"]["path"],
                                    shardmix_config.tokenizer_dir(self.cfg, self.layout.results))
        except ModelError as e:
            raise PlanError(f"model.path: {e}")

    def settings(self, section: str) -> dict:
        """A training section's settings: every one of them bears on the result."""
        return dict(self.cfg[section])

    def run_settings(self, section: str) -> str:
        """The runtime settings a job of `section` uses, as the job's last argument. Rules pass it
        as a derived param (a function taking `output`), which Snakemake never compares."""
        keys = TRAINING_RUNTIME if section.endswith("_training") else EVALUATION_RUNTIME
        return json.dumps({k: self.cfg["runtime"][k] for k in keys})

    def read_spec(self, name: str) -> dict:
        """What decides a source's documents. Its path is not part of it: a moved file with the
        same bytes (checksum) is the same source."""
        return {k: v for k, v in self.sources[name].items()
                if k in ("name", "format", "text_field", "split", "encoding", "revision")}

    def split_spec(self, name: str) -> dict:
        """What decides a source's shards; `include` only picks among them, so it is left out."""
        sharding = {k: v for k, v in self.sources[name]["sharding"].items() if k != "include"}
        return {**self.read_spec(name), "sharding": sharding}

    def split_parts(self, name: str) -> list:
        """The parts a source is tokenized in, each its own job (runtime.split_part_mb), as lists of
        pieces; none where split_source reads the source itself: a source of one part, or the demo's
        (built by a rule). A source already split keeps the parts its manifest records (gone since:
        they are temporary), so its job's inputs stay what they were and nothing reruns, whatever
        split_part_mb says now; a re-split on purpose (its `revision` raised) plans them anew."""
        if name not in self._parts:
            spec, parts = self.sources[name], None
            if os.path.exists(self.layout.manifest(name)):
                manifest = self.read_manifest(name)
                if manifest.get("revision") == spec["revision"]:
                    parts = [[_moved(p, manifest["path"], spec["path"]) for p in part]
                             for part in manifest.get("parts", [])]
            if parts is None and not self.built(spec["path"]) and shardmix_corpus.exists(spec["path"]):
                try:
                    found = shardmix_corpus.parts(spec, int(self.cfg["runtime"]["split_part_mb"] * 2**20), spec["key"])
                except shardmix_corpus.CorpusError as e:
                    raise PlanError(str(e)) from None
                parts = [[p.as_list() for p in part] for part in found] if len(found) > 1 else []
            self._parts[name] = parts or []
        return self._parts[name]

    def split_part_dirs(self, name: str) -> list[str]:
        return [self.layout.split_part(name, i) for i in range(len(self.split_parts(name)))]

    def result_config(self) -> dict:
        return json.loads(json.dumps({k: v for k, v in self.cfg.items() if k != "runtime"}))

    def built(self, path: str) -> list:
        """[path] where a rule of the workflow builds the file (the demo's corpus), else []: a
        user's file is no input of any rule, its checksum stands for it."""
        return [path] if path.startswith(DEMO_CORPUS + "/") else []

    def extra_eval_spec(self, name: str) -> dict:
        return next(e for e in self.cfg["eval_sets"] if e["name"] == name)

    def read_manifest(self, source: str) -> dict:
        """A source's split record: its shards, their sizes and the checksum of the bytes split."""
        try:
            return read_json(self.layout.manifest(source))
        except DamagedRecord as e:
            raise PlanError(f"{e}; it lists the source's shards. Delete {self.layout.corpus}/{source} and rerun: "
                            "the source is split again and its shards retrained")

    # --- checks before any job runs --------------------------------------------------------------

    def _check_paths(self):
        """Name a missing input by its config key now, rather than as a rule's missing file later."""
        # a source already split needs its file no more
        paths = [(f"{s['key']}.path", s["path"]) for s in self.cfg["sources"]
                 if not os.path.exists(self.layout.manifest(s["name"]))]
        paths += [(f"eval_sets[{i}].path", e["path"]) for i, e in enumerate(self.cfg["eval_sets"])]
        if self.cfg["selection"] and not os.path.exists(self.layout.selection_pool_info):
            paths.append(("selection.pool.path", self.cfg["selection"]["pool"]["path"]))
        missing = [f"{key}: {path} " + ("matches no file" if shardmix_corpus.is_glob(path) else "does not exist")
                   for key, path in paths
                   if not shardmix_corpus.exists(path) and not path.startswith(DEMO_CORPUS + "/")]
        if missing:
            raise PlanError("\n".join(missing))

    def _check_selection(self):
        """The selection's embedding model and pool, checked before any job runs."""
        sel = self.cfg["selection"]
        if not sel:
            return
        if sel["embedding"]["model"]:
            from shardmix.embedding import EmbeddingError, check_encoder

            try:
                check_encoder(sel["embedding"]["model"])
            except EmbeddingError as e:
                raise PlanError(str(e))
        elif sel["unit_tokens"] > self.cfg["model"]["context"]:
            raise PlanError(f"selection.unit_tokens: {sel['unit_tokens']} is longer than the seed model's context "
                            f"(model.context = {self.cfg['model']['context']}), which embeds the candidates")
        info = self.layout.selection_pool_info
        if os.path.exists(info) and os.path.exists(sel["pool"]["path"]):
            recorded = read_json(info)
            if shardmix_corpus.fingerprint(sel["pool"]["path"]) != recorded["fingerprint"] and \
                    shardmix_corpus.checksum(sel["pool"]["path"]) != recorded["checksum"]:
                raise PlanError(f"selection.pool.path ({sel['pool']['path']}) changed after its candidates were "
                                f"built; to choose from the new pool, delete {self.layout.selection}/pool (every "
                                "selection is redone and its shard retrained)")

    def _check_report_config(self, argv):
        """The config of the last finished run (run_config.json) must be this one: a report built
        from a config whose results do not exist would be empty and overwrite a good one."""
        if not any(a == "--report" or a.startswith("--report=") for a in argv):
            return
        path, results = self.layout.run_record, self.layout.results
        if not os.path.exists(path):
            raise PlanError(f"nothing to report: no finished run in {results}/ ({path} is missing); run snakemake "
                            "first, with the same --configfile")
        run = read_json(path)
        # settings added by later versions of shardmix take their defaults in a recorded config
        recorded = {k: v for k, v in shardmix_config.fill_defaults(run["config"]).items() if k != "runtime"}
        if recorded != self.result_config():
            raise PlanError(f"nothing to report for this config: {results}/ holds the results of a run with config "
                            f"{', '.join(run['configfiles']) or '(none)'}; pass it: snakemake --report "
                            f"{results}/report.html --configfile {' '.join(run['configfiles'])}")

    def run_record(self) -> str:
        return json.dumps({"configfiles": self.configfiles, "config": self.result_config()}, indent=2)

    def _foundation(self) -> list:
        """The sources the tokenizer and the seed are built from: `foundation` when set, else the
        ones recorded when they were first built, else every source."""
        if self.cfg["foundation"]:
            return list(self.cfg["foundation"])
        record = self.layout.foundation_record
        if os.path.exists(record):
            try:
                recorded = read_json(record)["sources"]
            except (DamagedRecord, KeyError, TypeError) as e:
                # rebuilding it from today's sources could silently retrain every model
                raise PlanError(f"{e if isinstance(e, DamagedRecord) else record + ': no list of sources'}; it names "
                                "the sources the tokenizer and the seed were built from. Set `foundation` to those "
                                "sources (that rewrites the record), or delete the file to record every source of "
                                "`corpus`")
            gone = [s for s in recorded if s not in self.sources]
            if gone:
                raise PlanError(
                    f"{record}: the tokenizer and seed were built from source(s) {', '.join(gone)}, which "
                    "`corpus` no longer lists. Put them back, or set `foundation` to the sources to rebuild "
                    "the tokenizer, the seed and every model from (on purpose).")
            return recorded
        return list(self.sources)

    def _check_sources_unchanged(self):
        """A source whose bytes changed after it was split would silently mix old and new results."""
        changed = []
        for name, spec in self.sources.items():
            path = self.layout.manifest(name)
            if not os.path.exists(path) or not os.path.exists(spec["path"]):
                continue
            recorded = self.read_manifest(name)
            if recorded.get("revision") != spec["revision"]:
                continue  # re-split on purpose
            if shardmix_corpus.fingerprint(spec["path"]) == recorded.get("fingerprint"):
                continue
            now = shardmix_corpus.checksum(spec["path"])
            if now != recorded.get("checksum"):
                changed.append(f"  {spec['key']} ({spec['path']}): checksum {recorded.get('checksum', '?')[:12]} "
                               f"when split, {now[:12]} now")
        if changed:
            raise PlanError(
                "corpus source(s) changed after they were split; their shard models were trained on the old text:\n"
                + "\n".join(changed) + "\nEither restore the file and add the new text as a new source (append it "
                "to `corpus`: one split and one training per new shard), or rebuild on purpose: raise that "
                "source's `revision` (re-splits it and retrains its shards; for a `foundation` source also the "
                "tokenizer, the seed and every model).")

    # --- what follows from the shards: derived once per version of the manifests ----------------

    def view(self) -> "ShardView":
        """The run's shards and all that follows from them, for the manifests as they are now: one
        `stat` per source, the rest computed when the manifests change."""
        stamps = tuple((s, _mtime(self.layout.manifest(s))) for s in self.sources)
        if stamps != self._stamps:
            self._stamps, self._view = stamps, ShardView(self, stamps)
        return self._view

    def all_split(self) -> bool:
        return all(os.path.exists(self.layout.manifest(s)) for s in self.sources)

    def shard_sources(self) -> dict:
        """Shard -> source, in the order shards were added, checked for size."""
        return self.view().shard_sources

    def shard_source(self, shard: str) -> str:
        return self.view().shard_sources[shard]

    def heldout_tokens(self, shard: str) -> str:
        return self.layout.source_tokens(self.shard_source(shard), f"{shard}.heldout")

    def train_tokens(self, shard: str) -> str:
        if shard in self.selections:
            return f"{self.layout.selected_shard(shard)}/train.npy"
        return self.layout.source_tokens(self.shard_source(shard), f"{shard}.train")

    def shard_data(self, shard: str) -> str:
        """What a shard model is trained from: its source's split, or the selection that made it."""
        if shard in self.selections:
            return self.layout.selected_shard(shard)
        return self.layout.manifest(self.shard_source(shard))

    def eval_sets(self) -> dict:
        """Eval set name -> its token file (a domain's held-out set: its units' files)."""
        return {name: spec.get("path", spec.get("paths")) for name, spec in self.view().eval_specs.items()}

    def eval_set_spec(self, name: str) -> dict:
        return self.view().eval_specs[name]

    def eval_set_inputs(self, names) -> list:
        """The files that stand for these eval sets: an extra set's token file; for a held-out set,
        its source's manifest (held-out sets live in the source's token folder)."""
        view = self.view()
        return sorted({f for s in names for f in view.set_inputs[s]})

    def eval_groups(self) -> dict:
        return self.view().groups

    def batches(self) -> dict:
        return self.view().plan[0]

    def validated_mixtures(self) -> list:
        return self.view().plan[1]

    def validation_picks(self) -> list:
        return self.view().plan[2]

    def score_files(self) -> list:
        return [self.layout.score_batch(g, b) for g in self.eval_groups() for b in self.batches()]

    def uniform_all(self) -> str:
        return naming.mixture_name(list(self.shard_sources()))

    # --- evaluation jobs ------------------------------------------------------------------------------

    def eval_inputs(self, group: str, batch: str) -> dict:
        entries = self.batches()[batch]
        return {"models": sorted({d for e in entries for d in e.folders()}),
                "data": self.view().group_inputs(group), "tokenizer": self.tokenizer}

    def eval_args(self, group: str, batch: str) -> str:
        view = self.view()
        return self.scoring_args([e.args() for e in view.plan[0][batch]], view.group_specs(group),
                                 self.layout.score_batch(group, batch))

    def scoring_args(self, models: list, eval_sets, out: str) -> str:
        ev = self.cfg["evaluation"]
        return args(models=models, eval_sets=eval_sets, tokenizer=self.tokenizer, max_tokens=ev["max_tokens"],
                    min_tokens=ev["min_tokens"], batch_windows=ev["batch_windows"],
                    context=self.cfg["model"]["context"], out=out)

    def scores_csv_wanted(self) -> bool:
        """evaluation.scores_csv: always, never, or auto: while the table holds at most
        CSV_ROWS rows (models x eval sets)."""
        choice = self.cfg["evaluation"]["scores_csv"]
        if choice != "auto":
            return choice == "always"
        view = self.view()
        return view.scores * len(view.eval_specs) <= CSV_ROWS

    def scores_table(self) -> str:
        """The table later jobs read: scores.csv where it is written (so runs that always read it
        keep their parameters), else scores.parquet."""
        return f"{self.layout.results}/scores.{'csv' if self.scores_csv_wanted() else 'parquet'}"

    def eval_groups_record(self) -> str:
        # which eval sets joined the run together; later runs keep these groups
        return args(record={"groups": list(self.eval_groups().values())}, out=self.layout.eval_groups_record)

    # --- training jobs ---------------------------------------------------------------------------------

    def _training_tokenizer(self):
        """Where a continued pretraining finds its tokenizer: the seed's folder, unless a
        pretrained model's folder holds none (tokenizer.path names another): then that folder,
        named in the arguments (only then, so runs that always worked keep their parameters)."""
        from shardmix.tokenizer import TOKENIZER_FILES

        if self.pretrained and not self.pretrained["convert"] and \
                not any(os.path.exists(os.path.join(self.seed_model, f)) for f in TOKENIZER_FILES):
            return self.tokenizer
        return None

    def training(self, sources: list, out: str, label: str, budgets=None) -> TrainingJob:
        return TrainingJob(seed=self.seed_model, sources=sources, training=self.settings("shard_training"),
                           context=self.cfg["model"]["context"], out=out, label=label,
                           tokenizer=self._training_tokenizer(), budgets=budgets)

    def shard_training(self, shard: str) -> TrainingJob:
        """A shard model's training (compared by Snakemake, recorded in the model)."""
        return self.training([self.train_tokens(shard)], self.layout.shard_model(shard), shard)

    def full_training(self, mixture: str) -> TrainingJob:
        """A really trained mixture. A uniform one gives each member the shard budget; a weighted
        one of k members k budgets in all, member i w_i * k of them."""
        weights = naming.weights(mixture)
        budgets = None
        if naming.is_weighted(mixture):
            total = len(weights) * self.cfg["shard_training"]["tokens"]
            budgets = [max(1, round(w * total)) for w in weights.values()]
        return self.training([self.train_tokens(s) for s in weights], self.layout.full_model(mixture),
                             f"full/{mixture}", budgets)

    def per_shard_total(self, mixture: str) -> int:
        """The tokens a mixture is trained on per shard: its members' shard budgets."""
        return len(naming.members(mixture)) * self.cfg["shard_training"]["tokens"]

    def trained_at(self, mixture: str, total: int) -> tuple[str, str]:
        """(model id, folder) of a mixture really trained on `total` tokens: its per-shard model where
        that is the same total (the same job: never trained twice), a shard's own model for a
        single shard at its budget, else a fixed-budget model."""
        if total == self.per_shard_total(mixture):
            if len(naming.members(mixture)) == 1:
                return naming.model_id("shard", mixture), self.layout.shard_model(mixture)
            return naming.model_id("full", mixture), self.layout.full_model(mixture)
        return naming.fixed_id(mixture, total), self.layout.fixed_model(mixture, total)

    def fixed_training(self, mixture: str, total: int) -> TrainingJob:
        """A mixture trained on `total` tokens in all, member i w_i * total of them."""
        weights = naming.weights(mixture)
        return self.training([self.train_tokens(s) for s in weights], self.layout.fixed_model(mixture, total),
                             naming.fixed_id(mixture, total), [max(1, round(w * total)) for w in weights.values()])

    def search_budget(self) -> int:
        """Tokens a searched mixture is trained on: search.budget_tokens, else what uniform weights
        over every shard get per shard."""
        return self.cfg["search"]["budget_tokens"] or len(self.shard_sources()) * self.cfg["shard_training"]["tokens"]

    # --- the seed's data ---------------------------------------------------------------------------

    def seed_domains(self, source: str):
        """The domains of a source whose seed data pretrains the seed (config seed_domains); None: all."""
        choice = self.cfg["seed_domains"]
        if choice == "all":
            return None
        if choice == "included":
            return self.sources[source]["sharding"]["include"]
        return list(choice)

    def seed_args(self) -> str:
        cfg = self.cfg
        kwargs = dict(tokenizer=self.tokenizer, seed_tokens=[self.layout.source_tokens(s, "seed") for s in self.foundation],
                      out=self.seed_model, architecture={k: v for k, v in cfg["model"].items() if k not in ("source", "path")},
                      training=self.settings("seed_training"))
        if cfg["seed_domains"] != "all":  # only then, so runs that read every domain keep their parameters
            kwargs.update(manifests=[self.layout.manifest(s) for s in self.foundation],
                          seed_domains=[self.seed_domains(s) for s in self.foundation])
        return args(**kwargs)

    def seed_overlap_args(self) -> dict:
        sel = self.cfg["selection"]
        return dict(seed_files=[[self.layout.source_tokens(s, "seed"), self.layout.manifest(s), self.seed_domains(s)]
                                for s in self.foundation],
                    eval_sets=self.view().eval_specs, max_tokens=self.cfg["evaluation"]["max_tokens"],
                    units=self.layout.selection_units if sel else None, sample_units=20000,
                    ngram=sel["overlap_ngram"] if sel else 32, out=f"{self.layout.results}/validation/seed_overlap.csv")

    # --- the ensemble proxy's cache ----------------------------------------------------------------

    def ensemble_shards(self) -> list:
        """Shards whose token NLLs the ensemble proxy reads: the members of the trained mixtures."""
        return sorted({s for m in self.validated_mixtures() for s in naming.members(m)})

    def token_nll_files(self) -> list:
        return [self.layout.token_nll(g, s) for g in self.eval_groups() for s in self.ensemble_shards()]

    def token_nll_args(self, group: str, shard: str) -> str:
        ev = self.cfg["evaluation"]
        return args(model=self.layout.shard_model(shard), eval_sets=self.view().group_specs(group),
                    max_tokens=ev["max_tokens"], batch_windows=ev["batch_windows"],
                    context=self.cfg["model"]["context"], out=self.layout.token_nll(group, shard))

    # --- selection ---------------------------------------------------------------------------------

    def selection_shards(self) -> dict:
        """Selected shard -> its method and target, checked against this run's shards and eval sets."""
        sets = self.eval_sets()
        for i, target in enumerate(self.cfg["selection"]["targets"]):
            if target["name"] not in sets:
                raise PlanError(f"selection.targets[{i}].name: {target['name']!r} is neither an eval set of this "
                                f"run nor given a path (eval sets: {', '.join(sets)})")
            if not isinstance(sets[target["name"]], str):
                raise PlanError(f"selection.targets[{i}].name: {target['name']!r} is a domain's held-out set; "
                                "name one shard's held-out set or an extra eval set")
        clash = [s for s in self.selections if s in sets]
        if clash:
            raise PlanError(f"selection: the selected shard name {clash[0]!r} is also a shard or eval set of the "
                            "run; rename the target")
        return self.selections

    def protected_files(self) -> list:
        """Token files no selected candidate may repeat: the held-out part of every shard of every
        source (included or not) and every extra eval set."""
        files = [self.layout.source_tokens(source, f"{shard}.heldout")
                 for source in self.sources for shard in self.read_manifest(source)["shards"]]
        return sorted(files + [self.layout.extra_eval_set(e["name"]) for e in self.cfg["eval_sets"]])

    def pool_spec(self) -> dict:
        """What decides the candidates. The pool's path is not part of it (its checksum is recorded
        in pool.json and checked when the workflow starts)."""
        spec = {k: v for k, v in self.cfg["selection"]["pool"].items() if k != "path"}
        return {**spec, "unit_tokens": self.cfg["selection"]["unit_tokens"]}

    def select_inputs(self) -> dict:
        layout = self.layout
        return {"units": layout.selection_units, "embeddings": f"{layout.selection}/pool/embeddings.npy",
                "seed": self.seed_model, "tokenizer": self.tokenizer,
                "protected": [layout.manifest(s) for s in self.sources] +
                [layout.extra_eval_set(e["name"]) for e in self.cfg["eval_sets"]]}

    def select_args(self, shard: str) -> dict:
        sel, chosen, pool = self.cfg["selection"], self.selection_shards()[shard], f"{self.layout.selection}/pool"
        return dict(shard=shard, method=chosen["method"], target=chosen["target"],
                    target_tokens=self.eval_sets()[chosen["target"]], protected=self.protected_files(),
                    overlap_ngram=sel["overlap_ngram"], tokens=sel["tokens"], unit_tokens=sel["unit_tokens"],
                    ot=sel["ot"], seed_value=sel["seed"], pool=self.pool_spec(), encoder=sel["embedding"]["model"],
                    batch_size=sel["embedding"]["batch_size"], units=self.layout.selection_units,
                    pool_info=self.layout.selection_pool_info, embeddings=f"{pool}/embeddings.npy",
                    embed_info=f"{pool}/embeddings.json", seed=self.seed_model, tokenizer=self.tokenizer,
                    out=self.layout.selected_shard(shard))

    def selection_summary_args(self) -> dict:
        selection = self.layout.selection
        return dict(scores=self.scores_table(), selections=self.selection_shards(),
                    shards_dir=f"{selection}/shards", method=self.methods[0]["label"], out=f"{selection}/summary.csv",
                    plots={t["name"]: f"{selection}/{t['name']}.png" for t in self.cfg["selection"]["targets"]})

    # --- search -------------------------------------------------------------------------------------

    def search_targets(self) -> dict:
        """Search target name -> {eval set: weight}, checked against this run's eval sets."""
        sets = list(self.eval_sets())
        targets = {}
        for i, target in enumerate(self.cfg["search"]["targets"]):
            chosen = target["eval_sets"]
            chosen = dict.fromkeys(sets, 1.0) if chosen is None else (
                dict.fromkeys(chosen, 1.0) if isinstance(chosen, list) else dict(chosen))
            unknown = [s for s in chosen if s not in sets]
            if unknown:
                raise PlanError(f"search.targets[{i}].eval_sets names {unknown[0]!r}, which is not an eval set of "
                                f"this run (eval sets: {', '.join(sets)})")
            total = sum(chosen.values())
            targets[target["name"]] = {s: w / total for s, w in chosen.items()}
        return targets

    def calibration_input(self):
        """The calibration exists where mixtures were really trained; else the search uses merged ppl."""
        return f"{self.layout.results}/validation/calibration.csv" if self.validated_mixtures() else None

    def search_inputs(self, target: str) -> dict:
        inputs = {"models": [self.layout.shard_model(s) for s in self.shard_sources()] + [self.seed_model],
                  "data": self.eval_set_inputs(self.search_targets()[target])}
        if self.calibration_input():
            inputs["calibration"] = self.calibration_input()
        return inputs

    def search_args(self, target: str) -> dict:
        chosen = self.search_targets()[target]
        return dict(name=target, target=chosen, shards=list(self.shard_sources()),
                    shard_dirs=[self.layout.shard_model(s) for s in self.shard_sources()], seed_dir=self.seed_model,
                    method=self.methods[0], eval_sets={s: self.eval_set_spec(s) for s in chosen},
                    max_tokens=self.cfg["evaluation"]["max_tokens"], context=self.cfg["model"]["context"],
                    calibration=self.calibration_input(), train_tokens=self.shard_train_tokens(),
                    budget_tokens=self.search_budget(),
                    search={k: v for k, v in self.cfg["search"].items() if k not in ("targets", "budget_tokens")},
                    out=f"{self.layout.search}/targets/{target}.json")

    def shard_train_tokens(self) -> list:
        """Training tokens of every shard, in shard order (what a search's repetition cap allows)."""
        view = self.view()
        return [view.manifests[src]["shards"][s]["train_tokens"] for s, src in self.shard_sources().items()]

    def best_mixtures_args(self) -> dict:
        search, targets = self.layout.search, self.search_targets()
        return dict(targets=targets, found={t: f"{search}/targets/{t}.json" for t in targets},
                    scores=self.scores_table(), calibration=self.calibration_input(),
                    train_tokens=self.shard_train_tokens(), budget_tokens=self.search_budget(),
                    method=self.methods[0]["label"], shards=list(self.shard_sources()),
                    out=f"{search}/best_mixtures.csv", plot=f"{search}/weights.png")

    def searched_mixtures(self) -> list:
        """The mixture each target's search chose. Only `rule all` waits for the checkpoint; this
        reads its table directly, as jobs that need it are planned only after it exists."""
        import csv

        with open(f"{self.layout.search}/best_mixtures.csv") as f:
            return sorted({row["weights"] for row in csv.DictReader(f)})

    def search_validation_models(self) -> dict:
        """Model id -> folder of each searched mixture and of uniform weights over every shard, all
        trained on the search's budget."""
        total = self.search_budget()
        return dict(self.trained_at(m, total) for m in self.searched_mixtures() + [self.uniform_all()])

    def validate_search_args(self) -> dict:
        search, targets = self.layout.search, self.search_targets()
        total = self.search_budget()
        picks = {m: self.trained_at(m, total)[0] for m in self.searched_mixtures()}
        at_total = self.per_shard_total if self.cfg["validation"]["fixed_budget"] != total else lambda m: total
        subsets = {m: self.trained_at(m, total)[0] for m in self.validated_mixtures()
                   if at_total(m) == total and not naming.is_weighted(m)}
        return dict(best=f"{search}/best_mixtures.csv", scores=self.scores_table(), targets=targets,
                    models=self.search_validation_models(), picks=picks, subsets=subsets, budget_tokens=total,
                    uniform=self.trained_at(self.uniform_all(), total)[0], tokenizer=self.tokenizer,
                    eval_sets={s: self.eval_set_spec(s) for t in targets.values() for s in t},
                    max_tokens=self.cfg["evaluation"]["max_tokens"], context=self.cfg["model"]["context"],
                    out=f"{search}/validation.csv")

    # --- what an existing results folder must make again -----------------------------------------

    def rebuilds(self) -> set:
        """Existing outputs the run must make again: damaged ones (a seal no longer matches) and
        models whose recorded arguments differ from this run's (a model Snakemake kept no record
        for, as after a kill between its save and Snakemake's bookkeeping, is still compared)."""
        found = set(self.rebuild)
        for damage in checksums.scan(self.layout.results):
            print(f"WARNING: {damage}; it is rebuilt", file=sys.stderr)
            found.add(str(damage.path))
        if not self.all_split():
            return found  # models follow the splits: compared once every source is split
        planned = {self.layout.shard_model(s): args(**self.shard_training(s).args())
                   for s in [*self.shard_sources(), *self.selections]}
        known = set(self.shard_sources()) | set(self.selections)
        full = f"{self.layout.models}/full"
        if os.path.isdir(full):
            for name in os.listdir(full):
                if not name.endswith(checksums.SKIPPED) and all(m in known for m in naming.members(name)):
                    planned[self.layout.full_model(name)] = args(**self.full_training(name).args())
        for folder in os.listdir(self.layout.models) if os.path.isdir(self.layout.models) else []:
            total = folder[len(naming.FIXED):]
            if folder.startswith(naming.FIXED) and total.isdigit():
                for name in os.listdir(f"{self.layout.models}/{folder}"):
                    if not name.endswith(checksums.SKIPPED) and all(m in known for m in naming.members(name)):
                        planned[self.layout.fixed_model(name, total)] = args(**self.fixed_training(name, int(total)).args())
        for path in shardmix_jobs.stale(planned):
            print(f"WARNING: {path} was made with other settings than this run's; it is made again", file=sys.stderr)
            found.add(path)
        return found

    def removed_from_groups(self) -> list:
        """Eval sets scored by an earlier run that left this one (see `warn_removed`)."""
        return sorted({s for group in self.recorded_groups for s in group} - set(self.eval_sets()))

    def warn_removed(self):
        """A shard left out of `include` after it was scored leaves its eval-set group and every
        batch it shared with later shards: those are scored again (and again if it comes back).
        Say so before the jobs start."""
        removed = self.removed_from_groups()
        if removed:
            print(f"WARNING: shard(s) or eval set(s) {', '.join(removed)} left the run after they were scored: the "
                  "eval-set groups and mixture batches they were part of are scored again without them, and "
                  "again if they come back. Only time is spent: a mixture's scores do not change (its models are "
                  "kept).", file=sys.stderr)


def _mtime(path):
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:
        return None
