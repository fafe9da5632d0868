"""Stopping a training job without losing its work.

SIGTERM (SLURM's time limit or preemption, Snakemake cancelling its jobs), SIGUSR1 (the warning
profiles/slurm asks SLURM to send before the time limit) and SIGINT (Ctrl-C) ask the training
loop to stop: it saves its resumable state at the next boundary between micro-batches (a step
half done is dropped: the weights still are the last step's) and exits with EXIT_CODE, which
Snakemake treats as a failure and retries where `retries` is set; the retry resumes. A job
asked to stop never writes its output: the model folder appears only from a run that finished.
"""

from __future__ import annotations

import signal
import sys
import threading

SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, worth retrying


class Preempted(SystemExit):
    """Raised by the training loop once its state is saved; exits the job with EXIT_CODE."""

    def __init__(self):
        super().__init__(EXIT_CODE)


class StopRequests:
    """While entered, the signals above are recorded instead of ending the process. Outside
    the main thread (where Python cannot set handlers) nothing changes."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False

    def _record(self, sig, frame):
        if self.received is None:
            print(f"received {signal.Signals(sig).name}: stopping at the next micro-batch boundary",
                  file=sys.stderr, flush=True)
        self.received = sig

    @property
    def requested(self) -> bool:
        return self.received is not None


def forward_to_jobs(running) -> None:
    """In Snakemake's own process: pass SIGINT, SIGTERM and SIGUSR1 on to every running job
    (`running()`: their processes; each job's shell has exec'd its Python, so the job is that
    process, rules/common.smk), then carry on as Snakemake would for SIGINT, also for SIGTERM.

    Left alone, Snakemake answers SIGINT ("Terminating processes on user request") by waiting
    for its jobs to finish and dies on SIGTERM leaving them running; either way a training job
    wrote its model long after the run had ended. SIGUSR1 (SLURM's warning before a time
    limit, sent to the job step's Snakemake and its job alike) would kill a job step's Snakemake
    and with it the job before it saved; it is only passed on. Outside the main thread, or where
    Python cannot set handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return
    interrupted = []

    def forward(sig, frame):
        for proc in running():
            try:
                proc.send_signal(sig)
            except OSError:  # ended meanwhile
                pass
        if sig != signal.SIGUSR1 and not interrupted:
            interrupted.append(sig)
            raise KeyboardInterrupt

    for sig in SIGNALS:
        signal.signal(sig, forward)
