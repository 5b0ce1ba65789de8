"""Child processes that can always be stopped: own process group, log to a file, stop by escalation."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

__all__ = ["Process", "free_loopback_port", "log_tail", "spawn", "stop", "terminate"]


class Process(Protocol):
    """What the lab needs of a server's process: a ``subprocess.Popen``, or a server the fork server forked."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def spawn(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path, pass_fds: Sequence[int] = ()
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, so a Ctrl+C at the terminal reaches only the lab, which then stops it."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )


def terminate(proc: Process) -> None:
    """Ask the child's process group to shut down (SIGTERM) without waiting; ``stop`` later reaps it."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)


def stop(proc: Process, *, grace: float = 5.0) -> int:
    """SIGTERM the child's process group, wait up to ``grace`` seconds, SIGKILL what is left, reap."""
    if proc.poll() is None:
        terminate(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Whatever the child started in its group goes too, even if the child itself has already exited.
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no server log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(server log is empty)"


def free_loopback_port() -> int:
    """A port of 127.0.0.1 free a moment ago, for a server that must be told its port (PostgreSQL, PgBouncer). It
    can be taken before that server binds it: the caller retries with another when the server says so."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
