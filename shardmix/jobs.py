"""What every workflow script shares: its JSON arguments, thread count and result files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def job_args() -> dict:
    """The rule passes one JSON object (its `params.args`), then optionally its thread count and
    a JSON object of settings that change how the job runs, never its result (`params.how`)."""
    if len(sys.argv) not in (2, 3, 4):
        sys.exit(f"usage: {sys.argv[0]} '<json arguments>' [threads ['<json settings>']] (run by the workflow's rules)")
    args = json.loads(sys.argv[1])
    if len(sys.argv) >= 3:
        import torch

        torch.set_num_threads(int(sys.argv[2]))
    if len(sys.argv) == 4:
        args.update(json.loads(sys.argv[3]))
    return args


def job_device():
    """The device named by runtime.device, which the workflow exports as SHARDMIX_DEVICE."""
    from shardmix.model import pick_device

    return pick_device(os.environ.get("SHARDMIX_DEVICE", "auto"))


def write_json(path: str | Path, data) -> None:
    from shardmix import atomic

    atomic.write_text(path, json.dumps(data, indent=2) + "\n")


def fail(message: str) -> None:
    """End the job with a one-line error; the rule's log holds it and Snakemake names the log."""
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)
