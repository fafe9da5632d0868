"""Where every artifact of a run lives, relative to the working directory. Two configs with
different results folders never share an artifact."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_CORPUS = "results/demo_corpus"  # built from the demo's packages, shared by every config that reads it


@dataclass(frozen=True)
class Layout:
    results: str

    @property
    def logs(self) -> str:  # logs/ for the default folder, else inside its own results folder
        return "logs" if self.results == "results" else f"{self.results}/logs"

    @property
    def benchmarks(self) -> str:
        return "benchmarks" if self.results == "results" else f"{self.results}/benchmarks"

    @property
    def corpus(self) -> str:
        return f"{self.results}/corpus"

    @property
    def models(self) -> str:
        return f"{self.results}/models"

    @property
    def scores(self) -> str:
        return f"{self.results}/scores"

    @property
    def search(self) -> str:
        return f"{self.results}/search"

    @property
    def selection(self) -> str:
        return f"{self.results}/selection"

    @property
    def foundation_record(self) -> str:
        return f"{self.corpus}/foundation.json"

    @property
    def validation_sample(self) -> str:
        return f"{self.results}/validation/sample.json"

    @property
    def eval_groups_record(self) -> str:
        return f"{self.scores}/eval_groups.json"

    @property
    def run_record(self) -> str:
        return f"{self.results}/run_config.json"

    @property
    def selection_units(self) -> str:
        return f"{self.selection}/pool/units.npz"

    @property
    def selection_pool_info(self) -> str:
        return f"{self.selection}/pool/pool.json"

    def manifest(self, source: str) -> str:
        return f"{self.corpus}/{source}/manifest.json"

    def split_part(self, source: str, part) -> str:
        """One part of a source, tokenized (temporary: the source's split gathers it)."""
        return f"{self.corpus}/{source}/parts/{part:04d}" if isinstance(part, int) else \
            f"{self.corpus}/{source}/parts/{part}"  # a wildcard

    def source_tokens(self, source: str, name: str) -> str:
        """A source's token file: `<shard>.train`, `<shard>.heldout` or `seed`."""
        return f"{self.corpus}/{source}/tokens/{name}.npy"

    def shard_model(self, shard: str) -> str:
        return f"{self.models}/shards/{shard}"

    def full_model(self, mixture: str) -> str:
        return f"{self.models}/full/{mixture}"

    def fixed_model(self, mixture: str, total) -> str:
        return f"{self.models}/fixed{total}/{mixture}"

    @property
    def ensemble(self) -> str:
        return f"{self.results}/validation/ensemble"

    def token_nll(self, group: str, shard: str) -> str:
        """A shard model's NLL of every token of an eval-set group: the ensemble proxy's cache."""
        return f"{self.ensemble}/{group}/{shard}.safetensors"

    def selected_shard(self, shard: str) -> str:
        return f"{self.selection}/shards/{shard}"

    def extra_eval_set(self, name: str) -> str:
        return f"{self.results}/eval_sets/{name}.npy"

    def score_batch(self, group: str, batch: str) -> str:
        return f"{self.scores}/{group}/{batch}.csv"
