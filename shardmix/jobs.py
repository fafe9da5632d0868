"""What every workflow script shares: its JSON arguments, thread count and result files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def job_args() -> dict:
    """The rule passes one JSON object (its `params.args`), then optionally its thread count."""
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} '<json arguments>' [threads] (run by the workflow's rules)")
    if len(sys.argv) == 3:
        import torch

        torch.set_num_threads(int(sys.argv[2]))
    return json.loads(sys.argv[1])


def job_device():
    """The device named by runtime.device, which the workflow exports as SHARDMIX_DEVICE."""
    from shardmix.model import pick_device

    return pick_device(os.environ.get("SHARDMIX_DEVICE", "auto"))


def write_json(path: str | Path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def fail(message: str) -> None:
    """End the job with a one-line error; the rule's log holds it and Snakemake names the log."""
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)
