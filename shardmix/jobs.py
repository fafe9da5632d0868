"""What every workflow script shares: its JSON arguments, thread count and result files."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def job_args() -> dict:
    """The rule passes one JSON object (its `params.args`) as the only argument."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} '<json arguments>' (run by the workflow's rules)")
    args = json.loads(sys.argv[1])
    if "threads" in args:
        import torch

        torch.set_num_threads(int(args["threads"]))
    return args


def write_json(path: str | Path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def fail(message: str) -> None:
    """End the job with a one-line error; the rule's log holds it and Snakemake names the log."""
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)
