"""Warm start: a job script runs in a child forked from a process that has already imported
torch and transformers, instead of paying their imports (about 5 CPU-seconds) in every job.

Snakemake starts one server per local run (`onstart`, when runtime.warm_start is on) and stops
it when the run ends; the server also leaves by itself once Snakemake is gone or it has been
idle a while. A job script calls `delegate()` first: where the server answers (SHARDMIX_WARM
names its socket), the script's own command line, working directory, environment and standard
streams are handed to a fresh fork of the server, and the script waits for it and exits with its
status; where no server answers (a cluster node, a dry run, a script started by hand) it runs
as it always did. Job outputs are the same either way; only who imports what changes.

The server never runs a tensor operation (forking after that is unsafe with OpenMP and CUDA):
it imports, then forks. A child whose caller goes away (Snakemake killed, the job cancelled)
sees its connection close and stops itself with SIGTERM, so no orphan writes after a restart.
The socket lives in a private folder (mode 0700) of the user who runs Snakemake.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import threading

from shardmix import faults

ENV = "SHARDMIX_WARM"
CHILD_ENV = "SHARDMIX_WARM_CHILD"
HEADER = struct.Struct("!Q")
IDLE_SECONDS = 120  # a server with no job this long leaves


def _send(sock, data: bytes, fds=()) -> None:
    if fds:
        socket.send_fds(sock, [HEADER.pack(len(data))], list(fds))
    else:
        sock.sendall(HEADER.pack(len(data)))
    sock.sendall(data)


def _recv_exact(sock, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return bytes(out)


def _recv(sock, with_fds: int = 0):
    if with_fds:
        head, fds, _, _ = socket.recv_fds(sock, HEADER.size, with_fds)
        head += _recv_exact(sock, HEADER.size - len(head)) if len(head) < HEADER.size else b""
    else:
        head, fds = _recv_exact(sock, HEADER.size), []
    return _recv_exact(sock, HEADER.unpack(head)[0]), fds


# --- the job's side --------------------------------------------------------------------------------


def delegate() -> None:
    """Run this script in a warm child where a server answers, and exit with its status; else
    return and let the script run here."""
    path = os.environ.get(ENV)
    if not path or os.environ.get(CHILD_ENV):
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # the job's process group goes with it: what signals "the job and its Snakemake" finds them
    env = {**os.environ, faults.JOB_GROUP: str(os.getpgrp())}
    request = {"argv": [os.path.abspath(sys.argv[0]), *sys.argv[1:]], "cwd": os.getcwd(), "env": env}
    try:
        _send(sock, json.dumps(request).encode(), fds=(0, 1, 2))
        pid = json.loads(_recv(sock)[0])["pid"]
    except (OSError, ConnectionError, ValueError):
        sock.close()
        return  # the server left between connect and fork: run here
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # preemption reaches the job
        signal.signal(sig, lambda s, _f: os.kill(pid, s))
    try:
        result = json.loads(_recv(sock)[0])
    except ConnectionError:
        print("warm start: the server went away while the job ran", file=sys.stderr)
        os._exit(1)
    print(f"warm start: ran in pid {pid}, {result['cpu']:.1f} CPU-s, peak memory {result['max_rss_mib']:.0f} MiB",
          file=sys.stderr, flush=True)
    code = result["code"]
    if code < 0:  # killed by a signal: end the same way
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


# --- the server's side -----------------------------------------------------------------------------


def _preload() -> bool:
    """What job scripts import, imported once, before any fork; False where that started CUDA
    (a fork could not use it: the server then answers no job)."""
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"  # asking for CUDA devices must not start CUDA
    import numpy  # noqa: F401
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: F401

    from shardmix import model, perplexity, tokenizer, tokens, training  # noqa: F401
    from shardmix.merging import reader, resident, streamed  # noqa: F401

    return not torch.cuda.is_initialized()


def _child(conn, request: dict, fds: list, inherited: list) -> None:
    """In the fork: become the job (streams, folder, environment, argv) and run its script."""
    code = 1
    try:
        for other in inherited:  # other jobs' connections: their callers' exits must reach them alone
            other.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"], **{CHILD_ENV: "1"})
        sys.argv = request["argv"]
        sys.path[0] = os.path.dirname(request["argv"][0])
        for entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
            if entry and entry not in sys.path:
                sys.path.insert(1, entry)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)

        def watch():  # the caller gone: stop, as the job would have been stopped with it
            try:
                while conn.recv(1):
                    pass
            except OSError:
                pass
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()
        import runpy

        try:
            runpy.run_path(request["argv"][0], run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait(conn, pid: int, running: dict, lock) -> None:
    """Report the child's status and usage to its caller once it exits."""
    _, status, usage = os.wait4(pid, 0)
    try:
        _send(conn, json.dumps({"code": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime,
                                "max_rss_mib": usage.ru_maxrss / 1024}).encode())
    except OSError:
        pass
    conn.close()
    with lock:  # only now: the server leaves once no caller waits for an answer
        running.pop(pid, None)


def serve(path: str, parent: int, idle: float = IDLE_SECONDS) -> None:
    """Answer jobs at the socket `path` until process `parent` (Snakemake) is gone or no job
    came for `idle` seconds. Forks happen on this (the main) thread; threads only wait."""
    import time

    if not _preload():
        print("warm start: importing started CUDA; jobs run on their own", flush=True)
        os.rmdir(os.path.dirname(path))
        return
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    server.settimeout(5)
    running, lock, last = {}, threading.Lock(), time.monotonic()  # running: pid -> its connection
    while True:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            with lock:
                busy = bool(running)
            if not _alive(parent) or (not busy and time.monotonic() - last > idle):
                break
            continue
        last = time.monotonic()
        try:
            conn.settimeout(10)
            data, fds = _recv(conn, with_fds=3)
            request = json.loads(data)
            conn.settimeout(None)
        except (OSError, ConnectionError, ValueError):
            conn.close()
            continue
        with lock:
            inherited = [server, *running.values()]
        pid = os.fork()
        if pid == 0:
            _child(conn, request, fds, inherited)
        for fd in fds:
            os.close(fd)
        with lock:
            running[pid] = conn
        try:
            _send(conn, json.dumps({"pid": pid}).encode())
        except OSError:
            pass
        threading.Thread(target=_wait, args=(conn, pid, running, lock), daemon=True).start()
    server.close()
    os.unlink(path)
    os.rmdir(os.path.dirname(path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def start(home: str, log: str, ready_seconds: float = 60):
    """Start a server for this process's jobs, the package imported from `home`: (its socket's
    path, its process). The socket is in a private folder (mode 0700) under the system's temp
    folder, whose path stays short enough for a Unix socket."""
    import subprocess
    import tempfile
    import time

    path = os.path.join(tempfile.mkdtemp(prefix="shardmix-warm-"), "s")
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [home, os.environ.get("PYTHONPATH")]))}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "shardmix.warm", path, str(os.getpid())], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    # the first jobs would otherwise start before it listens, and pay their imports themselves
    deadline = time.monotonic() + ready_seconds
    while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return path, proc


def stop(path: str, proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except Exception:
        proc.kill()
    for leftover in (path, os.path.dirname(path)):
        try:
            os.remove(leftover) if leftover == path else os.rmdir(leftover)
        except OSError:
            pass


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
