"""Errors the planner raises: a config or a disk state the run cannot plan from."""

try:  # Snakemake prints its WorkflowError as a message, without a traceback
    from snakemake.exceptions import WorkflowError as _Base
except ImportError:  # unit tests and tools that plan without Snakemake
    _Base = Exception


class PlanError(_Base):
    pass


class DamagedRecord(PlanError):
    """A record the planner reads whose bytes no longer match its seal, or that is not JSON."""
