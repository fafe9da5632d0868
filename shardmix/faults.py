"""Fault injection for the crash and signal tests: `SHARDMIX_CRASH_AT=<point>` kills the job's
whole process group (the job and the Snakemake that started it, as a power loss or kill -9
would) when the job reaches that point; `SHARDMIX_STEP_SECONDS=<s>` makes every training step
last at least that long, so a test can signal a run mid-training. Unset, each costs one
environment lookup."""

from __future__ import annotations

import os
import signal
import time

JOB_GROUP = "SHARDMIX_JOB_PGRP"  # set in a warm-start child (shardmix.warm): its caller's group


def crash_point(point: str) -> None:
    if os.environ.get("SHARDMIX_CRASH_AT") == point:
        os.killpg(int(os.environ.get(JOB_GROUP, os.getpgrp())), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)  # a warm child is in the server's group, not its caller's


def pace() -> None:
    seconds = os.environ.get("SHARDMIX_STEP_SECONDS")
    if seconds:
        time.sleep(float(seconds))
