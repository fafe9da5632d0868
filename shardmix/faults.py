"""Fault injection for the crash tests: `SHARDMIX_CRASH_AT=<point>` kills the job's whole
process group (the job and the Snakemake that started it, as a power loss or kill -9 would)
when the job reaches that point. Unset, it costs one environment lookup."""

from __future__ import annotations

import os
import signal


def crash_point(point: str) -> None:
    if os.environ.get("SHARDMIX_CRASH_AT") == point:
        os.killpg(os.getpgrp(), signal.SIGKILL)
