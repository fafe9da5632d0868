"""Unit tests of shardmix.progress: the console's progress lines and their estimate."""

from __future__ import annotations

from collections import Counter

import pytest

from shardmix import progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_durations_read_back_as_written():
    for seconds in (0, 45, 185, 7800):
        assert progress.parse_duration(progress.duration(seconds)) == pytest.approx(seconds, abs=60 if seconds > 3600 else 0)
    assert progress.eta(10, 40, 20.0) == "ETA 1m00s" and progress.eta(0, 40, 5.0) == "ETA ?"


def test_the_estimate_uses_timed_rules_and_the_eta_a_running_job_prints(tmp_path):
    clock = Clock()
    run = progress.Run(Counter(train_shard=4, evaluate_batch=2), clock=clock)
    log = tmp_path / "a.log"
    for jobid in (1, 2):  # two shards trained side by side, 100 s each
        run.job_started(jobid)
        run.job_info(jobid, "train_shard", [str(tmp_path / f"{jobid}.log")], {"shard": f"s{jobid}"})
    clock.now = 100
    run.job_finished(1)
    run.job_finished(2)
    run.job_started(3)
    run.job_info(3, "train_shard", [str(log)], {"shard": "s3"})
    log.write_text("[s3] step 5/10 loss 4.1 lr 1e-3 tokens 640 (64 tokens/s, ETA 50s)\n")
    clock.now = 150
    left, unknown = run.estimate()
    # job 3: 50 s by its log; one shard waiting: 100 s; evaluate_batch: never timed; two at once
    assert left == pytest.approx((50 + 100) / 2) and unknown == ["evaluate_batch"]
    line = run.line()
    assert "at least 1m15s left (evaluate_batch: no job timed yet)" in line and "running train_shard s3 (50s): [s3] step 5/10" in line
    run.progress(2, 6)
    run.progress(2, 9, recount=lambda: Counter(train_shard=2, evaluate_batch=5))  # a checkpoint added jobs
    assert run.total == 9 and run.pending["evaluate_batch"] == 5


def test_a_log_without_an_eta_still_shows_its_last_line(tmp_path):
    log = tmp_path / "b.log"
    log.write_text("loading\n\nscored 3 of 9\n")
    assert progress.last_progress(log) == ("scored 3 of 9", None)
    assert progress.last_progress(tmp_path / "missing.log") == ("", None)
