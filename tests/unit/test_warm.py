"""Unit tests of shardmix.warm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT

from shardmix import warm

SCRIPT = '''"""A job."""
from shardmix.warm import delegate

delegate()
import os, sys, time
print("argv", sys.argv[1:], "cwd", os.getcwd(), "env", os.environ.get("JOB_SETTING"), "pgrp", os.environ.get("SHARDMIX_JOB_PGRP"), "torch", "torch" in sys.modules, flush=True)
print("to stderr", file=sys.stderr, flush=True)
if sys.argv[1] == "sleep":
    time.sleep(30)
    open("late", "w").write("written after the caller died")
sys.exit(int(sys.argv[2]))
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path, proc = warm.start(str(ROOT), str(tmp_path_factory.mktemp("warm") / "warm.log"))
    assert os.path.exists(path)  # start returns once it listens
    yield path, proc
    warm.stop(path, proc)
    assert not os.path.exists(os.path.dirname(path))


def _job(tmp_path, server, *args, **kwargs):
    server = server[0] if isinstance(server, tuple) else server
    (tmp_path / "job.py").write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), JOB_SETTING="x y", **({warm.ENV: server} if server else {}))
    return subprocess.Popen([sys.executable, str(tmp_path / "job.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_job_runs_in_a_warm_child_as_it_would_alone(tmp_path, server):
    proc = _job(tmp_path, server, "run", "3")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert f"argv ['run', '3'] cwd {tmp_path} env x y pgrp {os.getpgrp()} torch True" in out  # imported already
    assert "to stderr" in err and "warm start: ran in pid" in err
    alone = _job(tmp_path, None, "run", "0")
    out, err = alone.communicate(timeout=60)
    assert alone.returncode == 0 and "torch False" in out and "warm start" not in err


def test_a_job_whose_caller_is_killed_stops(tmp_path, server):
    proc = _job(tmp_path, server, "sleep", "0", start_new_session=True)
    line = proc.stdout.readline()
    assert line.startswith("argv ['sleep', '0']")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    time.sleep(2)  # the child saw its connection close and stopped
    children = subprocess.run(["pgrep", "-P", str(server[1].pid)], capture_output=True, text=True).stdout.split()
    assert children == []  # the server alone: no child left
    assert not (tmp_path / "late").exists()


def test_no_server_means_the_job_runs_here(tmp_path):
    proc = _job(tmp_path, str(tmp_path / "no-such-socket"), "run", "5")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5 and "torch False" in out and "warm start" not in err
