"""AutoScale's runs: DDO at two small budgets, really trained and merged from the domains' shard
models (the proxy), and the really trained check at a larger budget (shardmix.autoscale)."""

from __future__ import annotations

import csv
import re

from shardmix import naming
from shardmix import merging
from shardmix.plan.errors import PlanError
from shardmix.plan.jobs import EvalEntry, Merge, TrainingJob


class AutoScalePlan:
    def __init__(self, planner):
        self.p = planner
        self.cfg = asc = planner.cfg["autoscale"]
        self.folder = (asc["folder"] or f"{planner.layout.results}/autoscale").rstrip("/")
        # a study in its own folder keeps its logs there, so two studies over one run never share a log
        self.logs = f"{self.folder}/logs" if asc["folder"] else f"{planner.layout.logs}/autoscale"
        self.methods = ["real"] + (["proxy"] if asc["proxy"] else [])
        self.check_weightings = ["predicted"] + (["predicted_proxy"] if asc["proxy"] else []) + \
            ["uniform", "small_scale_optimum"]

    @property
    def weights_file(self) -> str:
        return f"{self.folder}/weights.csv"

    def domains(self) -> dict:
        """Domain -> its shards, checked against the run's shards: a name is a shard, or a domain
        cut into base units by field_units (the shards <name>-NNN), unless its shards are listed."""
        order = list(self.p.shard_sources())
        domains, owner, problems = {}, {}, []
        for i, d in enumerate(self.cfg["domains"]):
            name = d if isinstance(d, str) else d["name"]
            shards = d["shards"] if isinstance(d, dict) else (
                [d] if d in order else [s for s in order if re.fullmatch(re.escape(d) + r"-\d{3,}", s)])
            unknown = [s for s in shards if s not in order]
            if not shards or unknown:
                problems.append(f"autoscale.domains[{i}]: {(unknown or [name])[0]!r} is neither a shard of this run "
                                f"nor a domain cut into shards {name}-NNN (shards: {', '.join(order)})")
            for s in shards:
                if s in owner:
                    problems.append(f"autoscale.domains[{i}]: shard {s!r} is already in domain {owner[s]!r}")
                owner[s] = name
            domains[name] = shards
        sets = self.p.eval_sets()
        unknown = [t for t in self.cfg["targets"] if t not in sets]
        if unknown:
            problems.append(f"autoscale.targets names {unknown[0]!r}, which is not an eval set of this run "
                            f"(eval sets: {', '.join(sets)})")
        if problems:
            raise PlanError("\n".join(problems))
        return domains

    def runs(self) -> dict:
        from shardmix.autoscale import ddo_runs

        return ddo_runs(list(self.domains()), self.cfg["factors"])

    def model(self, scale, run: str) -> str:
        return f"{self.folder}/models/{scale}/{run}"

    def check_model(self, weighting: str) -> str:
        return f"{self.folder}/models/check/{weighting}"

    def training(self, scale, weights: dict, label: str, out: str) -> TrainingJob:
        """A real run: each domain `weights[d] * scale` tokens, split over its shards."""
        from shardmix.autoscale import shard_budgets

        domains = self.domains()
        budgets = shard_budgets({d: weights[d] * int(scale) for d in domains}, domains)
        return TrainingJob(seed=self.p.seed_model, sources=[self.p.train_tokens(s) for s in budgets],
                           budgets=list(budgets.values()), training=self.p.settings("shard_training"),
                           context=self.p.cfg["model"]["context"], out=out, label=label)

    def ddo_training(self, scale, run: str) -> TrainingJob:
        multiples = self.runs()[run]
        return self.training(scale, {d: m / len(multiples) for d, m in multiples.items()},
                             f"autoscale/{scale}/{run}", self.model(scale, run))

    def check_training(self, weighting: str) -> TrainingJob:
        return self.training(self.cfg["check"], self.check_weights()[weighting], f"autoscale/check/{weighting}",
                             self.check_model(weighting))

    def check_weights(self) -> dict:
        """Weighting -> domain weights of the really trained check: the projections (read from
        weights.csv, which only the checkpoint's consumers read), uniform, and the optimum at N2."""
        with open(self.weights_file) as f:
            rows = list(csv.DictReader(f))

        def at(method, scale):
            return {r["domain"]: float(r["weight"]) for r in rows
                    if r["method"] == method and int(r["scale_tokens"]) == scale}

        domains = list(self.domains())
        chosen = {"predicted": at("real", self.cfg["check"])}
        if self.cfg["proxy"]:
            chosen["predicted_proxy"] = at("proxy", self.cfg["check"])
        chosen["uniform"] = dict.fromkeys(domains, 1 / len(domains))
        chosen["small_scale_optimum"] = at("real", self.cfg["scales"][1])
        return chosen

    def domain_inputs(self) -> list:
        return sorted({self.p.layout.manifest(self.p.shard_source(s)) for shards in self.domains().values()
                       for s in shards})

    def entries(self, method: str, scale) -> list:
        """The models one scoring job scores: a scale's DDO runs, really trained or merged, or the check."""
        from shardmix.autoscale import quantities, unit_weights

        def columns(weights):
            return {"shards": naming.SEP.join(weights), "weights": naming.SEP.join(f"{w:.6g}" for w in weights.values())}

        if method == "check":
            return [EvalEntry(model=f"autoscale/check/{w}", kind="full", dirs=[self.check_model(w)], **columns(weights))
                    for w, weights in self.check_weights().items()]
        domains = self.domains()
        entries = []
        for run, multiples in self.runs().items():
            model = f"autoscale/{method}/{scale}/{run}"
            if method == "real":
                entries.append(EvalEntry(model=model, kind="full", dirs=[self.model(scale, run)], **columns(multiples)))
                continue
            units = unit_weights(quantities(multiples, int(scale)), domains, self.p.cfg["shard_training"]["tokens"])
            entries.append(EvalEntry(model=model, kind="merged", method="linear",
                                     dirs=[self.p.layout.shard_model(s) for s in units],
                                     merge=Merge(weights=list(units.values()), method=merging.method("linear").spec(), seed=None),
                                     **columns(multiples)))
        return entries

    def score_file(self, method: str, scale) -> str:
        return f"{self.folder}/scores/{method}-{scale}.csv"

    def score_inputs(self, method: str, scale) -> dict:
        entries = self.entries(method, scale)
        inputs = {"models": sorted({d for e in entries for d in e.dirs}),
                  "data": self.p.eval_set_inputs(self.cfg["targets"]), "tokenizer": self.p.tokenizer}
        if method == "check":
            inputs["weights"] = self.weights_file
        return inputs

    def score_args(self, method: str, scale) -> str:
        return self.p.scoring_args([e.args() for e in self.entries(method, scale)],
                                   {s: self.p.eval_set_spec(s) for s in self.cfg["targets"]},
                                   self.score_file(method, scale))

    def scores(self) -> dict:
        return {m: {n: self.score_file(m, n) for n in self.cfg["scales"]} for m in self.methods}

    def real_models(self) -> list:
        return [self.model(n, run) for n in self.cfg["scales"] for run in self.runs()]

    def proxy_units(self) -> list:
        """The shard models some proxy merge uses: what the proxy cost in training."""
        if not self.cfg["proxy"]:
            return []
        return sorted({d for n in self.cfg["scales"] for e in self.entries("proxy", n) for d in e.dirs})

    def fit_args(self) -> dict:
        f = self.folder
        return dict(domains=list(self.domains()), factors=self.cfg["factors"], scales=self.cfg["scales"],
                    predict=self.cfg["predict"], targets=self.cfg["targets"], scores=self.scores(),
                    real_models=self.real_models(), proxy_units=self.proxy_units(), fits=f"{f}/fits.csv",
                    weights=self.weights_file, plot=f"{f}/weights.png", cost=f"{f}/cost.csv")

    def outputs(self) -> list:
        """What `rule all` asks of the study, the check aside (it waits for the fit's checkpoint)."""
        return [f"{self.folder}/{name}" for name in ("fits.csv", "weights.csv", "weights.png", "cost.csv")]
