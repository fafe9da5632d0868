"""Progress on the console: which jobs run, how far each is, and roughly how long the run has left.

Snakemake counts finished jobs only, so a long training job shows no movement for its whole
run. `watch` listens to Snakemake's job events (the LogEvent records its logger plugins get)
from inside the Snakefile, so plain `snakemake` needs no extra flag or plugin install, and
every `interval` seconds prints one line: the jobs done, an estimate of the time left, and
each running job's last progress line from its log (training: step, tokens/s, ETA).

The estimate: every pending job of a rule takes that rule's mean finished-job time, or the
projected length of a running job of it (elapsed + the ETA its log prints); the summed work
is divided by the most jobs seen running at once. Rules with no job timed yet are named as
left out, so the figure says when it is a floor. Memory: one entry per job of the run.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

INTERVAL_SECONDS = 60  # SHARDMIX_PROGRESS_SECONDS overrides; 0 turns the lines off
_ETA = re.compile(r"ETA (\d+(?:h\d+m|m\d+s|s))")


def duration(seconds: float) -> str:
    """`45s`, `3m05s`, `2h10m`: short enough for a console line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def parse_duration(text: str) -> float:
    """Seconds of a `duration` string."""
    hours = re.match(r"(\d+)h(\d+)m$", text)
    if hours:
        return 3600 * int(hours[1]) + 60 * int(hours[2])
    minutes = re.match(r"(\d+)m(\d+)s$", text)
    if minutes:
        return 60 * int(minutes[1]) + int(minutes[2])
    return float(text.rstrip("s"))


def eta(done: int, total: int, elapsed: float) -> str:
    """`ETA 3m05s` for `done` of `total` units after `elapsed` seconds (this process's pace)."""
    if done <= 0:
        return "ETA ?"
    return f"ETA {duration(elapsed / done * (total - done))}"


def last_progress(log: Path, tail_bytes: int = 4096) -> tuple[str, float | None]:
    """The last line of a job's log and the seconds left it states (None when it states none)."""
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - tail_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "", None
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        return "", None
    found = _ETA.search(lines[-1])
    return lines[-1], parse_duration(found[1]) if found else None


class Run:
    """What is known of the run so far, fed by Snakemake's job events."""

    def __init__(self, pending: Counter, clock=time.monotonic):
        self.clock = clock
        self.started = clock()
        self.pending = Counter(pending)  # rule -> jobs not finished (running ones included)
        self.running: dict[int, dict] = {}  # jobid -> {rule, logs, wildcards, since}
        self.starts: dict[int, float] = {}  # jobid -> when Snakemake started it
        self.timed: dict[str, list[float]] = defaultdict(list)  # rule -> finished jobs' seconds
        self.done = 0
        self.total = sum(self.pending.values())
        self.widest = 1  # most jobs seen running at once

    def job_started(self, jobid: int) -> None:
        self.starts[jobid] = self.clock()

    def job_info(self, jobid: int, rule: str, logs: list[str], wildcards: dict) -> None:
        """Snakemake describes a job as it hands it over, just after announcing its start."""
        self.running[jobid] = {"rule": rule, "logs": logs, "wildcards": wildcards,
                               "since": self.starts.pop(jobid, self.clock())}
        self.widest = max(self.widest, len(self.running))

    def job_finished(self, jobid: int) -> None:
        job = self.running.pop(jobid, None)
        if job is None:
            return
        self.timed[job["rule"]].append(self.clock() - job["since"])
        self.pending[job["rule"]] -= 1

    def progress(self, done: int, total: int, recount=None) -> None:
        """Snakemake's own count; a larger total means checkpoints added jobs: `recount()` gives
        the pending jobs per rule again."""
        if total != self.total and recount is not None:
            self.pending = Counter(recount())
        self.done, self.total = done, total

    def _last_lines(self) -> dict[int, tuple[str, float | None]]:
        """Each running job's last log line and the seconds left it states, read once per line printed."""
        return {jobid: last_progress(Path(job["logs"][0])) if job["logs"] else ("", None)
                for jobid, job in self.running.items()}

    def estimate(self, now: float | None = None, last: dict | None = None) -> tuple[float, list[str]]:
        """(seconds left, rules left out of it because none of their jobs is timed yet)."""
        now = self.clock() if now is None else now
        last = self._last_lines() if last is None else last
        per_job, work, unknown = {}, 0.0, []
        running_by_rule = Counter(j["rule"] for j in self.running.values())
        for jobid, job in self.running.items():
            _, left = last[jobid]
            elapsed = now - job["since"]
            if left is not None:
                work += left
                per_job.setdefault(job["rule"], elapsed + left)
            elif self.timed.get(job["rule"]):
                mean = sum(self.timed[job["rule"]]) / len(self.timed[job["rule"]])
                work += max(0.0, mean - elapsed)
        for rule, count in self.pending.items():
            waiting = count - running_by_rule[rule]
            if waiting <= 0 or rule == "all":  # the target rule runs nothing
                continue
            if self.timed.get(rule):
                work += waiting * sum(self.timed[rule]) / len(self.timed[rule])
            elif rule in per_job:
                work += waiting * per_job[rule]
            else:
                unknown.append(rule)
        return work / self.widest, sorted(unknown)

    def line(self) -> str:
        last = self._last_lines()
        left, unknown = self.estimate(last=last)
        head = f"[progress {duration(self.clock() - self.started)}] {self.done} of {self.total} jobs done"
        if self.done < self.total:
            head += (f", at least {duration(left)} left ({', '.join(unknown)}: no job timed yet)" if unknown
                     else f", ~{duration(left)} left")
        parts = [head]
        for jobid, job in sorted(self.running.items(), key=lambda kv: kv[1]["since"]):
            what = job["rule"] + "".join(f" {v}" for v in job["wildcards"].values())
            text, _ = last[jobid]
            parts.append(f"  running {what} ({duration(self.clock() - job['since'])})"
                         + (f": {text[:150]}" if text else ""))
        return "\n".join(parts)


class _Listener(logging.Handler):
    def __init__(self, run: Run, recount):
        super().__init__()
        self.run, self.recount = run, recount
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        event = str(getattr(record, "event", ""))
        try:
            with self.guard:
                if event == "job_info":
                    logs = [str(f).split(" ")[0] for f in (record.log or [])]
                    self.run.job_info(record.jobid, record.rule_name, logs, dict(record.wildcards or {}))
                elif event == "job_started":
                    for jobid in record.jobs:
                        self.run.job_started(jobid)
                elif event == "job_finished":
                    self.run.job_finished(record.job_id)
                elif event == "progress":
                    self.run.progress(record.done, record.total, self.recount)
        except Exception:  # progress lines are a courtesy: never fail the run over them
            pass


def watch(workflow, interval: float | None = None, stream=sys.stderr):
    """Print the run's progress every `interval` seconds until the process ends (from `onstart`)."""
    if interval is None:
        interval = float(os.environ.get("SHARDMIX_PROGRESS_SECONDS", INTERVAL_SECONDS))
    if interval <= 0:
        return None

    def recount():
        return Counter(job.rule.name for job in workflow.dag.needrun_jobs())

    run = Run(recount())
    listener = _Listener(run, recount)
    logging.getLogger("snakemake.logging").addHandler(listener)

    def loop():
        while True:
            time.sleep(interval)
            with listener.guard:
                if run.running or run.done < run.total:
                    print(run.line(), file=stream, flush=True)

    threading.Thread(target=loop, name="shardmix-progress", daemon=True).start()
    return run
