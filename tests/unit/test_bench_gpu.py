"""bench/gpu.py in smoke mode."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT


def test_the_gpu_bench_runs_in_smoke_mode_on_any_device(tmp_path):
    """bench/gpu.py (`make bench-gpu`) with tiny models: both compile settings train to the same
    loss, and mixtures are scored from a resident pool; its figures are written as JSON."""
    import json

    root = ROOT
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--out", str(out)], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    off, on = result["training"]["smoke, compile off"], result["training"]["smoke, compile on"]
    assert "error" not in off and "error" not in on, (off, on)
    assert off["tokens_per_s"] > 0 and off["flops_per_token"] > 0 and off["steps"] == 4
    assert on["final_loss"] == pytest.approx(off["final_loss"], rel=1e-4)
    assert result["scoring"]["smoke"]["mixtures"] == 11  # every 2-4 of 4 members
