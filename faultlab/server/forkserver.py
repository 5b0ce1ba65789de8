"""The lab's fork server: one process with the heavy imports done, which forks each catalogue server.

A cold server spends most of its start-up CPU importing FastAPI, SQLAlchemy, alembic and uvicorn (~0.9 s on
the machines the lab was measured on), paid again at every start and restart; on a small machine running many
servers that is most of what the lab costs. So the lab starts, at its first catalogue server, ``python -m
faultlab.inside.serve --fork-server`` (its own session, the lifeline, the lab's environment), which does those
imports once and then forks a server for each order: its command line, working directory, environment and
log. The fork server is the servers' parent: it reaps them and tells the lab their exit codes, so the lab holds
each as a ``Forked`` handle that behaves as the ``subprocess.Popen`` of a cold start would.

What the fork server imports is what every catalogue server imports anyway before any code of the app or a
fault runs, and none of it reads the app's settings (tests/test_forkserver.py holds both, and that a forked
server looks like a cold one from the inside). Servers of code from elsewhere (a learner's workspace, the
doctor's user app) start cold: a module of theirs could shadow a library the fork server has imported. So does
a server whose interpreter start-up variables (``PYTHON*``) differ from the fork server's.
``FAULTLAB_NO_FORKSERVER=1`` turns it off (the benchmark measures both ways). It ends when the lab closes its
standard input, at exit or when the lab dies, however it dies.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

from faultlab.inside import wire
from faultlab.inside.serve import FORK_SERVER_FLAG
from faultlab.server.process import Process, spawn
from faultlab.variants import PROJECT_ROOT

__all__ = ["DISABLE_ENV", "Forked", "launch", "pids", "shutdown"]

DISABLE_ENV = "FAULTLAB_NO_FORKSERVER"
_SERVE = (sys.executable, "-m", "faultlab.inside.serve")
_ANSWER_S = 60.0  # the first order waits for the fork server's imports, on a machine that may be busy
_LOST = -1  # the exit code of a server whose fork server is gone before it could say


def _startup(env: Mapping[str, str]) -> dict[str, str]:
    """The variables read once as the interpreter starts (PYTHONPATH aside: the orders set sys.path): its own, and
    the locale and time zone, which fix the encodings and the C library's state."""
    return {
        k: v for k, v in env.items() if (k.startswith(("PYTHON", "LC_")) or k in ("LANG", "TZ")) and k != "PYTHONPATH"
    }


class Forked:
    """A server forked by the fork server: the part of ``subprocess.Popen`` the lab uses. It is not the lab's child,
    so its exit code comes from the fork server, which reaped it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._news = threading.Event()  # it ended, or its fork server is gone
        self._orphaned = False  # its fork server is gone: whoever adopted it reaps it, and its code is lost

    def poll(self) -> int | None:
        if self.returncode is None and self._orphaned and not _running(self.pid):
            self._end(_LOST)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0.0)
            if self._orphaned:  # nobody will say: look
                time.sleep(0.05 if remaining is None else min(0.05, remaining))
            else:
                self._news.wait(remaining)
        return code

    def _end(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        self._news.set()

    def _orphan(self) -> None:
        self._orphaned = True
        self._news.set()


def _running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


class _ForkServer:
    """The fork server's process, its answers (read by a thread of its own) and the servers it forked."""

    def __init__(self, env: Mapping[str, str], pass_fds: Sequence[int]) -> None:
        inherited = {  # as LabServer's: none of the shell's settings for the app (the orders bring the server's)
            k: v
            for k, v in os.environ.items()
            if k not in wire.APP_SETTINGS and not k.startswith(("PYTHON", "FAULTLAB_", "UVICORN_"))
        }
        self.startup = _startup(env)
        self.fds = frozenset(pass_fds)
        self.proc = subprocess.Popen(
            [*_SERVE, FORK_SERVER_FLAG],
            cwd=PROJECT_ROOT,
            env={**inherited, **self.startup, "PYTHONPATH": str(PROJECT_ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # as a server: a Ctrl+C at the terminal reaches the lab only
            pass_fds=tuple(pass_fds),
        )
        self.abandoned = False  # an order went unanswered: the fork server is being let go
        self._children: dict[int, Forked] = {}
        self._started: queue.Queue[Forked | None] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), name="lab-fork-server", daemon=True).start()

    def fork(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path) -> Forked | None:
        """The server these orders make, or None if the fork server cannot make it (then the server starts cold)."""
        if self.proc.stdin is None or self.proc.poll() is not None:
            return None
        orders = {"argv": list(args), "cwd": str(cwd), "env": dict(env), "log": str(log_path)}
        try:
            self.proc.stdin.write(json.dumps(orders).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            return None
        try:
            return self._started.get(timeout=_ANSWER_S)
        except queue.Empty:  # stuck: it goes, and a server it forked for this order is killed as it is told
            self.abandoned = True
            self.close(wait_s=0)
            return None

    def _read(self, answers: IO[bytes]) -> None:
        try:
            for line in answers:
                word, *numbers = line.split()
                if word == b"pid" and self.abandoned:  # nobody waits for it: it must not serve on
                    with contextlib.suppress(OSError):
                        os.killpg(int(numbers[0]), signal.SIGKILL)
                elif word == b"pid":
                    child = Forked(int(numbers[0]))
                    self._children[child.pid] = child
                    self._started.put(child)
                elif word == b"exit" and (ended := self._children.pop(int(numbers[0]), None)) is not None:
                    ended._end(int(numbers[1]))
        finally:  # however reading ends, nobody waits for an answer that cannot come
            answers.close()
            for child in self._children.values():
                child._orphan()
            self._started.put(None)

    def close(self, wait_s: float = 5.0) -> None:
        """End of input: the fork server exits (a server it forked goes on until the lab stops it or is gone)."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Launcher:
    """At most one fork server per lab process, made at the first catalogue server and used under a lock (a
    restart may come from another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: _ForkServer | None = None
        self._stuck = False  # a fork server once left an order unanswered: every later server starts cold

    def launch(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        pass_fds: Sequence[int],
        warm: bool,
        python: str | None = None,
    ) -> Process:
        """The server ``python -m faultlab.inside.serve ARGS``: forked by the fork server when ``warm`` allows, else
        cold; with another interpreter (``python``, a project's own), always cold."""
        log_path.touch()  # there before this returns, as a cold start's is: the lab reads it at once
        if warm and python is None and not os.environ.get(DISABLE_ENV):
            with self._lock:
                server = None if self._stuck else self._ready(env, pass_fds)
                forked = server.fork(args, cwd, env, log_path) if server is not None else None
                self._stuck = self._stuck or (server is not None and server.abandoned)  # cold from now on
            if forked is not None:
                return forked
        argv = [python, *_SERVE[1:], *args] if python else [*_SERVE, *args]
        return spawn(argv, cwd=cwd, env=env, log_path=log_path, pass_fds=pass_fds)

    def _ready(self, env: Mapping[str, str], pass_fds: Sequence[int]) -> _ForkServer | None:
        server = self._server
        if server is not None and server.proc.poll() is None:
            return server if server.startup == _startup(env) and server.fds >= set(pass_fds) else None
        if server is None:
            atexit.register(self.shutdown)
        else:
            server.close()  # gone: its pipe closed too
        try:
            self._server = _ForkServer(env, pass_fds)
        except OSError:
            return None  # the servers start cold
        return self._server

    def pids(self) -> set[int]:
        """The fork server's process id, if there is one (a test tells it from a server left behind)."""
        with self._lock:
            server = self._server
        return {server.proc.pid} if server is not None and server.proc.poll() is None else set()

    def shutdown(self) -> None:
        """Let the fork server go (the lab is done with it)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.close()


_LAUNCHER = _Launcher()
launch = _LAUNCHER.launch
pids = _LAUNCHER.pids
shutdown = _LAUNCHER.shutdown
