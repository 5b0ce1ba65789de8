"""Start ``python -m app`` as a real subprocess for tests, and always stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from faultlab.server.process import log_tail, spawn, stop

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def lab_processes(pid: int, marker: str = "faultlab.inside.harness:create_app") -> list[psutil.Process]:
    """The processes under the lab ``pid`` whose command line holds ``marker``: its servers by default;
    ``"faultlab.inside.serve"`` adds its fork server (faultlab.server.forkserver)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if marker in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(
    workdir: Path, database_url: str, *, port: int | None = None, options: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m app`` on loopback, ready to answer; stopped (SIGTERM, then SIGKILL) on the way out."""
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    log = workdir / f"app-{port}.log"
    proc = spawn(
        [sys.executable, "-m", "app", "--port", str(port), "--db", database_url, *options],
        cwd=workdir,
        env=env,
        log_path=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log)
        yield base, proc
    finally:
        stop(proc)


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, *, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode} before answering:\n{log_tail(log)}")
        try:
            if httpx.get(f"{base}/todos/count", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"app did not answer on {base} within {deadline_s:.0f} s:\n{log_tail(log)}")


def interrupt(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> int:
    """Ctrl+C, as a person at the terminal would; returns the exit code."""
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=timeout)
