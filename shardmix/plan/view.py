"""What follows from one version of the split manifests: the run's shards, its eval sets and
their groups, the scored and trained mixtures and their evaluation batches, each derived once
(the planner makes a new view when a manifest's file time changes)."""

from __future__ import annotations

import json
import re
from functools import cached_property

from shardmix import mixtures as shardmix_mixtures
from shardmix import naming
from shardmix import merging
from shardmix.plan.errors import PlanError
from shardmix.plan.jobs import EvalEntry, Merge, Raw

UNIT = re.compile(r"(.+)-\d{3,}")  # a base unit of a domain cut by field_units


class ShardView:
    """The shards of one version of the manifests and what follows from them, each computed once."""

    def __init__(self, planner, stamps: tuple):
        self.p, self.stamps = planner, stamps
        self._group_specs, self._group_inputs = {}, {}

    @cached_property
    def manifests(self) -> dict:
        missing = [s for s, mtime in self.stamps if mtime is None]
        if missing:
            raise PlanError(f"source(s) {', '.join(missing)} not split yet ({self.p.layout.manifest(missing[0])} "
                            "is missing)")
        return {s: self.p.read_manifest(s) for s, _ in self.stamps}

    @cached_property
    def shard_sources(self) -> dict:
        from shardmix import sharding

        cfg = self.p.cfg
        try:
            return sharding.check_shards(
                {s: (self.p.sources[s], m) for s, m in self.manifests.items()}, self.p.foundation,
                cfg["shard_training"]["tokens"], cfg["model"]["context"], cfg["evaluation"]["min_tokens"],
                seed_needed=cfg["model"]["source"] == "pretrain")
        except sharding.ShardSizeError as e:
            raise PlanError(str(e))

    def domain(self, shard: str) -> str:
        """The domain a shard belongs to: recorded in the manifest since units record it, else
        read from a field_units name (<domain>-NNN), else the shard itself."""
        source = self.shard_sources[shard]
        info = self.manifests[source]["shards"][shard]
        if "domain" in info:
            return info["domain"]
        match = UNIT.fullmatch(shard)
        return match.group(1) if match and self.p.sources[source]["sharding"]["method"] == "field_units" else shard

    @cached_property
    def domains(self) -> dict:
        out = {}
        for shard in self.shard_sources:
            out.setdefault(self.domain(shard), []).append(shard)
        return out

    def _heldout_spec(self, shard: str) -> dict:
        source = self.shard_sources[shard]
        return {"path": self.p.heldout_tokens(shard), "segment": self.p.sources[source]["sharding"]["chunk_tokens"]}

    @cached_property
    def heldout_sets(self) -> dict:
        """Held-out eval sets as evaluation.heldout_sets chooses: name -> the shards they read."""
        choice = self.p.cfg["evaluation"]["heldout_sets"]
        if choice == "shards":
            return {s: [s] for s in self.shard_sources}
        if choice == "none":
            return {}
        if choice == "domains":
            return dict(self.domains)
        out = {}
        for i, name in enumerate(choice):
            if name in self.shard_sources:
                out[name] = [name]
            elif name in self.domains:
                out[name] = self.domains[name]
            else:
                raise PlanError(f"evaluation.heldout_sets[{i}]: {name!r} is neither a shard nor a domain of this run "
                                f"(domains: {', '.join(self.domains)})")
        return out

    @cached_property
    def eval_specs(self) -> dict:
        """Eval set name -> what scoring needs of it: its token file(s) and, for a held-out set,
        the length of the chunks it is made of (no evaluation window crosses the join of two)."""
        specs = {}
        for name, shards in self.heldout_sets.items():
            if shards == [name]:
                specs[name] = self._heldout_spec(name)
            else:  # a domain: its units' held-out files, read as one set
                specs[name] = {"paths": [self.p.heldout_tokens(s) for s in shards],
                               "segment": self._heldout_spec(shards[0])["segment"]}
        for extra in self.p.cfg["eval_sets"]:
            if extra["name"] in specs or extra["name"] in self.shard_sources:
                raise PlanError(f"eval_sets: name '{extra['name']}' is also a shard's or domain's name; rename it")
            specs[extra["name"]] = {"path": self.p.layout.extra_eval_set(extra["name"]), "segment": None}
        if not specs:
            raise PlanError("nothing to score on: evaluation.heldout_sets is none and eval_sets lists no set")
        return specs

    @cached_property
    def set_inputs(self) -> dict:
        extra = {e["name"] for e in self.p.cfg["eval_sets"]}
        layout = self.p.layout
        return {name: [layout.extra_eval_set(name)] if name in extra else
                sorted({layout.manifest(self.shard_sources[s]) for s in self.heldout_sets[name]})
                for name in self.eval_specs}

    @cached_property
    def groups(self) -> dict:
        """Group id -> eval sets. An evaluation job merges each model of its batch once and scores
        it on every set of one group. Groups are the sets that joined the run together (recorded
        in results/scores/eval_groups.json), so a shard or eval set added later forms a new group
        and never changes the jobs that already ran."""
        sets = list(self.eval_specs)
        groups = [[s for s in group if s in self.eval_specs] for group in self.p.recorded_groups]
        seen = {s for group in groups for s in group}
        groups.append([s for s in sets if s not in seen])
        return {f"g{i}": group for i, group in enumerate(groups) if group}

    def group_specs(self, group: str) -> Raw:
        if group not in self._group_specs:
            specs = {s: self.eval_specs[s] for s in self.groups[group]}
            self._group_specs[group] = Raw(json.dumps(specs, sort_keys=True))
        return self._group_specs[group]

    def group_inputs(self, group: str) -> list:
        if group not in self._group_inputs:
            self._group_inputs[group] = sorted({f for s in self.groups[group] for f in self.set_inputs[s]})
        return self._group_inputs[group]

    # --- mixtures and their evaluation batches -------------------------------------------------

    def entry(self, kind: str, mixture: str = "", method=None) -> EvalEntry:
        """One model of an evaluation batch: what to load (dirs) and, for a merge, how to merge it."""
        p = self.p
        columns = dict(model=naming.model_id(kind, mixture, method["label"] if method else "linear"), kind=kind,
                       shards=naming.SEP.join(naming.members(mixture)) if mixture else "",
                       weights=naming.weights_column(mixture) if mixture else "")
        if kind == "seed":
            return EvalEntry(dirs=[p.seed_model], **columns)
        if kind == "shard":
            return EvalEntry(dirs=[p.layout.shard_model(mixture)], **columns)
        if kind == "full":
            return EvalEntry(dirs=[p.layout.full_model(mixture)], **columns)
        if kind == naming.FIXED:
            total = p.cfg["validation"]["fixed_budget"]
            columns["model"] = naming.fixed_id(mixture, total)
            return EvalEntry(dirs=[p.layout.fixed_model(mixture, total)], **columns)
        weights = naming.weights(mixture)
        return EvalEntry(dirs=[p.layout.shard_model(s) for s in weights], method=method["label"], merge=Merge(
            weights=list(weights.values()), method=method, seed=p.seed_model if merging.method(method).needs_seed else None),
            **columns)

    def merged_entries(self, mixture: str) -> list:
        if len(naming.members(mixture)) == 1:
            return [self.entry("shard", mixture)]
        return [self.entry("merged", mixture, m) for m in self.p.methods]

    @cached_property
    def plan(self):
        """Scored and really-trained mixtures of these shards, the evaluation batches, and the
        validation sample's picks (kept from the recorded sample, results/validation/sample.json)."""
        cfg = self.p.cfg
        order, size = list(self.shard_sources), cfg["mixtures"]["batch_size"]
        try:
            candidates = shardmix_mixtures.candidate_mixtures(order, cfg["mixtures"])
            picks = shardmix_mixtures.validation_sample(candidates, cfg["validation"]["random"], order,
                                                        self.p.recorded_sample)
            # the search's baseline, uniform over all shards, is trained with the sample (it trains
            # while the rest is scored) and gives the calibration a point where the search's are
            baseline = [naming.mixture_name(order)] if cfg["validation"]["search"] and len(order) > 1 else []
            validated = shardmix_mixtures.validation_mixtures(order, picks + baseline, cfg["validation"])
        except shardmix_mixtures.MixtureError as e:
            raise PlanError(str(e))
        # a trained mixture the candidates no longer list (e.g. a pick of a pool-wide sample redrawn
        # after a shard was added) is still scored, beside the mixtures of its kind
        scored = {**{m: "weighted" if naming.is_weighted(m) else "subset" for m in validated}, **candidates}
        plan = {"seed": [self.entry("seed")]}
        for batch, names in shardmix_mixtures.batches(order, scored, size).items():
            plan[batch] = [e for m in names for e in self.merged_entries(m)]
        # '@' cannot occur in a shard name, so these ids never clash with the batches above
        full = {m: "subset" for m in validated}
        for batch, names in shardmix_mixtures.batches(order, full, size, prefix="full@", singles=False).items():
            plan[batch] = [self.entry("full", m) for m in names]
        # validation.fixed_budget: the same mixtures on one total each (those not already trained on it)
        total = cfg["validation"]["fixed_budget"]
        fixed = {m: "subset" for m in validated if total and self.p.per_shard_total(m) != total}
        for batch, names in shardmix_mixtures.batches(order, fixed, size, prefix="fixed@", singles=False).items():
            plan[batch] = [self.entry(naming.FIXED, m) for m in names]
        plan.update(self._selection_batches(order, size))
        return plan, validated, picks

    @cached_property
    def scores(self) -> int:
        """Models the run scores (rows of the scores table per eval set); asked per job, counted once."""
        return sum(len(entries) for entries in self.plan[0].values())

    def _selection_batches(self, order: list, size: int) -> dict:
        """A selected shard's batches: its model alone, paired with each shard of the run, and
        added to all of them (uniform weights), as selection.mixtures asks."""
        if not self.p.cfg["selection"]:
            return {}
        how = self.p.cfg["selection"]["mixtures"]
        out = {}
        for shard in self.p.selection_shards():
            names = [shard] + ([naming.mixture_name([shard, s]) for s in order] if how["pairs"] else [])
            if how["with_all"] and len(order) > 1:
                names.append(naming.mixture_name(order + [shard]))
            names = list(dict.fromkeys(names))
            for i in range(0, len(names), size):
                out[f"{shard}.s{i // size:03d}"] = [e for m in names[i:i + size] for e in self.merged_entries(m)]
        return out
