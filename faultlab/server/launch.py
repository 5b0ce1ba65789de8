"""A variant on a real uvicorn server, on a free loopback port, that is always stopped, and that stops itself
when the lab is gone (``faultlab.inside.serve``)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx
import psutil

from faultlab.errors import ServerError
from faultlab.inside import wire
from faultlab.interrupts import deferred
from faultlab.server import client, forkserver
from faultlab.server.harness_copy import harness_only
from faultlab.server.lifeline import read_end
from faultlab.server.process import Process, log_tail, stop, terminate
from faultlab.variants import PROJECT_ROOT, Variant

__all__ = ["START_DEADLINE_S", "LabServer"]

START_DEADLINE_S = 30.0
GRACEFUL_SHUTDOWN_S = 2
_LISTENING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class LabServer:
    """``with LabServer(...) as server:`` starts, waits until it answers, and stops on the way out.

    The server binds port 0 on 127.0.0.1 and the lab reads the port from uvicorn's start-up line, so a busy
    port can never collide with a run.
    """

    def __init__(
        self,
        variant: Variant,
        *,
        workdir: Path,
        env: Mapping[str, str],
        cwd: str | None = None,
        workers: int = 1,
        name: str = "server",
        warm: bool = True,
        isolated: bool = False,
        python: str | None = None,
    ) -> None:
        self.variant = variant
        self.target = variant.target
        self.workdir = workdir  # the run's dir: the log and what the harness writes
        self.cwd = cwd  # the server's working directory, relative to workdir (default: workdir itself)
        self.env = dict(env)
        self.workers = workers
        # Forked (server.forkserver) for the catalogue's own code only: anyone else's could shadow what it preloaded.
        self.warm = warm and variant.app_dir == PROJECT_ROOT and python is None and not isolated
        # Isolated: the app's dir first on the import path, then the harness alone (``harness_copy``), never this
        # checkout, whose own ``app`` would shadow a project's. ``python``: the interpreter to serve it with (the
        # project's own); the harness comes with it, isolated.
        self.isolated = isolated or python is not None
        self.python = python
        self._cancelled: threading.Event | None = None
        self.log_path = workdir / f"{name}.log"
        self.proc: Process | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError("the server is not running")
        return self.proc.pid

    def start(self, *, deadline_s: float | None = None, cancelled: threading.Event | None = None) -> None:
        """Start and wait until the harness answers; raise ServerError (with the log's tail) otherwise.

        ``cancelled`` (set from another thread) ends the wait as an interrupt would (faultlab.running.together)."""
        self._cancelled = cancelled
        deadline_s = START_DEADLINE_S if deadline_s is None else deadline_s
        app_dir = self.variant.app_dir if self.isolated else PROJECT_ROOT  # uvicorn puts it first on sys.path
        args = [
            "faultlab.inside.harness:create_app", "--factory",
            "--host", "127.0.0.1", "--port", "0", "--app-dir", str(app_dir),
            "--no-access-log", "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_S),
        ]  # fmt: skip
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        cwd = self.workdir / self.cwd if self.cwd else self.workdir
        cwd.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        lifeline = read_end()
        env = {**self._environment(), wire.LIFELINE_ENV: str(lifeline)}
        # Spawned and registered at once: a Ctrl+C inside Popen (it waits for the exec) would otherwise leave a
        # server that nobody stops, writing into a temp dir that is being removed.
        with deferred() as pending:
            self.proc = forkserver.launch(
                args,
                cwd=cwd,
                env=env,
                log_path=self.log_path,
                pass_fds=(lifeline,),
                warm=self.warm,
                python=self.python,
            )
        try:
            if pending:
                raise KeyboardInterrupt
            port = self._await_port(offset, deadline_s)
            self.base_url = f"http://127.0.0.1:{port}"
            self._await_answer(deadline_s)
        except BaseException:
            with deferred():  # a second Ctrl+C must not cut the stop short; the first is raised below anyway
                self.stop()
            raise

    def _environment(self) -> dict[str, str]:
        # The app's own settings come from the experiment only, never from the user's shell; nor do uvicorn's
        # (UVICORN_LOG_LEVEL=error would hide the start-up line the port is read from, UVICORN_ENV_FILE load more).
        inherited = {
            k: v
            for k, v in os.environ.items()
            if k not in wire.APP_SETTINGS and not k.startswith(("FAULTLAB_", "UVICORN_"))
        }
        harness = harness_only(self.workdir / "harness") if self.isolated else PROJECT_ROOT
        # Then, for the lab's own servers, the lab's PYTHONPATH, where a plugin of another distribution may live
        # (its inside part is imported by the server); never for a user's app, whose path is its own.
        given = [] if self.isolated else [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        paths = dict.fromkeys([str(self.variant.app_dir), str(harness), *given])
        env = {
            **inherited,
            **self.env,
            wire.TARGET_ENV: self.target,
            wire.RUN_DIR_ENV: str(self.workdir),
            "PYTHONPATH": os.pathsep.join(paths),
            "PYTHONUNBUFFERED": "1",
        }
        if self.variant.engine:
            env[wire.ENGINE_ENV] = self.variant.engine
        return env

    def pids(self) -> set[int]:
        """The server's processes: uvicorn, and its workers when there are several."""
        proc = self.proc  # read once: a restart may swap it from another thread (the timeline's)
        if proc is None:
            return set()
        if self.workers == 1:  # one process: no need to walk /proc for children, 40 times a second
            return {proc.pid}
        try:
            return {proc.pid, *(child.pid for child in psutil.Process(proc.pid).children(recursive=True))}
        except psutil.Error:
            return {proc.pid}

    def _await_port(self, offset: int, deadline_s: float) -> int:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            self._check_starting()
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                if match := _LISTENING.search(log.read()):
                    return int(match.group(1))
            time.sleep(0.02)
        raise ServerError(
            f"{self.target} did not start listening within {deadline_s:.0f} s; server log:\n{log_tail(self.log_path)}"
        )

    def _await_answer(self, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            self._check_starting()
            try:
                client.probe(self.base_url, f"{wire.PROBE_PREFIX}ready", timeout_s=1.0)
                return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise ServerError(
            f"{self.target} did not answer within {deadline_s:.0f} s; server log:\n{log_tail(self.log_path)}"
        )

    def _check_starting(self) -> None:
        if self._cancelled is not None and self._cancelled.is_set():
            raise KeyboardInterrupt
        self.check_alive("while starting")

    def check_alive(self, when: str) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerError(
                f"the server ({self.target}) exited with code {self.proc.returncode} {when}; "
                f"last lines of its log:\n{log_tail(self.log_path)}"
            )

    def terminate(self) -> None:
        """Begin a graceful shutdown and return at once; ``stop()`` must still be called to finish it."""
        if self.proc is not None:
            terminate(self.proc)

    def stop(self) -> int | None:
        """Graceful shutdown, then SIGKILL after a bounded wait; the process is reaped. Idempotent."""
        if self.proc is None:
            return None
        code = stop(self.proc, grace=GRACEFUL_SHUTDOWN_S + 3)
        self.proc = None
        return code

    def restart(self, *, cwd: str | None = None) -> None:
        """Stop, then start again (in another working directory when ``cwd`` is given)."""
        self.stop()
        if cwd is not None:
            self.cwd = cwd
        self.start()

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
