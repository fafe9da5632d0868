"""JSON records the planner reads at parse time, checked against their seals."""

from __future__ import annotations

import json
import os
import sys

from shardmix import checksums
from shardmix.plan.errors import DamagedRecord


def read_json(path: str):
    """A JSON file checked against its seal; a damaged one raises DamagedRecord naming it, and
    the caller, who knows what it holds, says what to do."""
    why = checksums.verify(path)
    if why is None:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            why = f"not valid JSON: {e}"
    raise DamagedRecord(f"{path}: damaged ({why})")


def read_record(path: str, rebuild: set):
    """A choice an earlier run recorded, read once, when the workflow is parsed: Snakemake deletes
    a job's output before it reruns the job, so a read while the record is being rewritten would
    see no record at all. A damaged record is named, added to `rebuild` and taken as absent (made
    again from this run's settings)."""
    if not os.path.exists(path):
        return None
    try:
        return read_json(path)
    except DamagedRecord as e:
        print(f"WARNING: {e}; it is made again from this run's settings", file=sys.stderr)
        rebuild.add(path)
        return None
