"""What every workflow script shares: its JSON arguments, thread count and result files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _one_line_errors(kind, error, trace):
    """shardmix's own errors (bad input, damaged artifacts) already say what and where: print
    them as one line; anything else keeps its traceback."""
    if (getattr(kind, "__module__", "") or "").startswith("shardmix"):
        print(f"ERROR: {error}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, trace)


def job_args() -> dict:
    """The rule passes one JSON object (its `params.args`), then optionally its thread count and
    a JSON object of settings that change how the job runs, never its result (`params.how`)."""
    sys.excepthook = _one_line_errors
    if len(sys.argv) not in (2, 3, 4):
        sys.exit(f"usage: {sys.argv[0]} '<json arguments>' [threads ['<json settings>']] (run by the workflow's rules)")
    args = json.loads(sys.argv[1])
    if len(sys.argv) >= 3:
        import torch

        torch.set_num_threads(int(sys.argv[2]))
    if len(sys.argv) == 4:
        args.update(json.loads(sys.argv[3]))
    return args


RECORD = "job.json"  # in a model folder: the compared arguments of the job that made it


def record() -> dict:
    """What a job's output keeps of the job: its compared arguments, exactly as the rule passed them."""
    return {"args": sys.argv[1]}


def stale(outputs: dict) -> list[str]:
    """Output folders (path -> compared arguments of this run) whose recorded arguments differ.
    A folder without a record (made before records existed) is left to Snakemake's own."""
    found = []
    for path, expected in outputs.items():
        try:
            recorded = json.loads((Path(path) / RECORD).read_text())["args"]
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            recorded = None  # damaged: the checksum scan names it as well
        if recorded != expected:
            found.append(path)
    return found


def job_device():
    """The device named by runtime.device, which the workflow exports as SHARDMIX_DEVICE; on a
    machine with several GPUs, one no other job holds (shardmix.gpus)."""
    from shardmix.model import pick_device

    device = pick_device(os.environ.get("SHARDMIX_DEVICE", "auto"))
    if device.type == "cuda":
        import torch

        from shardmix import gpus

        count = torch.cuda.device_count()
        device = torch.device("cuda", gpus.claim(count) if count > 1 else 0)
        torch.cuda.set_device(device)
    return device


def write_json(path: str | Path, data) -> None:
    from shardmix import atomic

    atomic.write_text(path, json.dumps(data, indent=2) + "\n")


def fail(message: str) -> None:
    """End the job with a one-line error; the rule's log holds it and Snakemake names the log."""
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)
