"""Unit tests of shardmix.gpus."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from shardmix import gpus
print(gpus.claim(3, {folder!r}), flush=True)
time.sleep(60)
"""


def test_jobs_on_a_machine_with_several_gpus_each_claim_their_own(tmp_path):
    from shardmix import gpus

    root = str(ROOT)
    holders = [subprocess.Popen([sys.executable, "-c", HOLDER.format(root=root, folder=str(tmp_path))],
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        held = sorted(int(h.stdout.readline()) for h in holders)
        assert held == [0, 1]
        assert gpus.claim(3, tmp_path) == 2  # the one left
        gpus.release()
        holders[0].kill()  # a job that ends, however, frees its GPU
        holders[0].wait()
        assert gpus.claim(3, tmp_path) in held
    finally:
        gpus.release()
        for h in holders:
            h.kill()
            h.wait()
