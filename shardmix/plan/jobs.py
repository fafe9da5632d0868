"""What a job is passed, defined once: a training job and an evaluation entry. Their `args()`
are what Snakemake compares (`params`) and what a trained model records (`job.json`), so a
field is added only where it is set: runs that never set it keep their parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass


class Raw(str):
    """A value already serialized by `args` (json.dumps, sort_keys): a table many jobs share is
    serialized once, not once per job."""


def args(**kwargs) -> str:
    """Arguments of a workflow script as one JSON string (also what the params trigger compares).
    Byte for byte json.dumps(kwargs, sort_keys=True), whichever values come as Raw."""
    return "{" + ", ".join(f"{json.dumps(k)}: {v if isinstance(v, Raw) else json.dumps(v, sort_keys=True)}"
                           for k, v in sorted(kwargs.items())) + "}"


@dataclass(frozen=True)
class TrainingJob:
    """Continued pretraining from the seed on one or more token files (a shard, a mixture, an
    AutoScale run); `budgets`: tokens drawn from each file, else the shard budget in all."""

    seed: str
    sources: list
    training: dict
    context: int
    out: str
    label: str
    tokenizer: str | None = None  # only where the seed's folder holds none
    budgets: list | None = None

    def args(self) -> dict:
        out = dict(seed=self.seed, sources=list(self.sources), training=self.training, context=self.context,
                   out=self.out, label=self.label)
        if self.tokenizer is not None:
            out["tokenizer"] = self.tokenizer
        if self.budgets is not None:
            out["budgets"] = list(self.budgets)
        return out


@dataclass(frozen=True)
class Merge:
    weights: list
    method: dict  # a merge method's spec (shardmix.merging.Method.spec)
    seed: str | None  # the seed's folder, for methods that merge deltas from it


@dataclass(frozen=True)
class EvalEntry:
    """One model an evaluation job scores: saved (seed, shard, full: `dirs` holds its folder) or
    merged from `dirs` as `merge` says. The other fields are the scores table's columns."""

    model: str
    kind: str
    dirs: list
    shards: str = ""
    weights: str = ""
    method: str = ""
    merge: Merge | None = None

    def args(self) -> dict:
        out = {"model": self.model, "kind": self.kind, "shards": self.shards, "weights": self.weights,
               "method": self.method, "dirs": list(self.dirs)}
        if self.merge is not None:
            out["merge"] = {"weights": list(self.merge.weights), "method": self.merge.method,
                            "seed": self.merge.seed}
        return out

    def folders(self) -> set:
        """Every model folder the entry reads."""
        return set(self.dirs) | ({self.merge.seed} if self.merge and self.merge.seed else set())
