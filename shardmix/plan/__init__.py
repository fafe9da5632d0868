"""The workflow's planner: what every job of a run reads, writes and is passed, derived from the
config and what earlier runs left on disk. The rule files ask one `Planner`; nothing here
imports Snakemake (a PlanError is Snakemake's WorkflowError where Snakemake is present)."""

from shardmix.plan.errors import DamagedRecord, PlanError
from shardmix.plan.planner import Planner

__all__ = ["DamagedRecord", "PlanError", "Planner"]
