"""A server process started ahead of need, with the heavy imports already done.

A cold server spends most of its start-up importing FastAPI, SQLAlchemy, alembic and uvicorn, paid again at
every start and restart. So the lab keeps one *spare*: ``python -m faultlab.inside.serve --spare``, spawned as a server
is (its own session, the lifeline, the lab's environment), which does those imports while the lab does
something else and then waits for its orders on standard input. ``launch`` hands it the server's command
line, working directory, environment and log, and spawns the next spare.

What a spare imports is what every catalogue server imports anyway before any code of the app or a fault
runs, and none of it reads the app's settings (tests/test_spare.py holds both). Servers of code from
elsewhere (a learner's workspace, the doctor's user app) start cold: a module of theirs could shadow a
library the spare has already imported. So does a server whose interpreter start-up variables (``PYTHON*``)
differ from the spare's. ``FAULTLAB_NO_SPARE=1`` turns spares off (the benchmark measures both ways).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from faultlab.inside import wire
from faultlab.inside.serve import SPARE_FLAG
from faultlab.server.process import spawn
from faultlab.variants import PROJECT_ROOT

__all__ = ["DISABLE_ENV", "expecting", "launch", "pids", "shutdown"]

DISABLE_ENV = "FAULTLAB_NO_SPARE"
_SERVE = (sys.executable, "-m", "faultlab.inside.serve")


def _startup(env: Mapping[str, str]) -> dict[str, str]:
    """The variables the interpreter itself reads as it starts (PYTHONPATH aside: the orders set sys.path)."""
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONPATH"}


class _Spares:
    """At most one spare, taken and made under a lock (a restart may come from another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: tuple[subprocess.Popen[bytes], dict[str, str]] | None = None  # with its start-up variables
        self._registered = False
        self._coming: int | None = None  # server starts still to come, when the lab knows (``expecting``)

    @contextlib.contextmanager
    def expecting(self, starts: int) -> Iterator[None]:
        """Within this block ``starts`` catalogue servers will start (an experiment's runs and restarts): a
        spare is made only for a start still to come, so none does its imports for nothing."""
        with self._lock:
            outer, self._coming = self._coming, starts
        try:
            yield
        finally:
            with self._lock:
                self._coming = outer  # a spare still ready (a run cut short) serves the next start, or goes at exit

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
    ) -> subprocess.Popen[bytes]:
        """The server ``python -m faultlab.inside.serve ARGS``: a spare given its orders when ``warm`` allows, else
        cold; with another interpreter (``python``, a project's own), always cold."""
        argv = [python, *_SERVE[1:], *args] if python else [*_SERVE, *args]
        log_path.touch()  # there before this returns, as a cold start's is: the lab reads it at once
        if not warm or python or os.environ.get(DISABLE_ENV):
            return spawn(argv, cwd=cwd, env=env, log_path=log_path, pass_fds=pass_fds)
        with self._lock:
            ready, self._ready = self._ready, None
            if ready is not None and ready[1] == _startup(env) and _give_orders(ready[0], args, cwd, env, log_path):
                server = ready[0]
            else:
                if ready is not None:
                    _discard(ready[0])
                server = spawn(argv, cwd=cwd, env=env, log_path=log_path, pass_fds=pass_fds)
            if self._coming is not None:
                self._coming -= 1
            if self._coming is None or self._coming > 0:
                self._ready = self._spawn(env, pass_fds)
        return server

    def _spawn(
        self, env: Mapping[str, str], pass_fds: Sequence[int]
    ) -> tuple[subprocess.Popen[bytes], dict[str, str]] | None:
        if not self._registered:
            atexit.register(self.shutdown)
            self._registered = True
        inherited = {  # as LabServer's: none of the shell's settings for the app (the orders bring the server's)
            k: v
            for k, v in os.environ.items()
            if k not in wire.APP_SETTINGS and not k.startswith(("PYTHON", "FAULTLAB_", "UVICORN_"))
        }
        spare_env = {**inherited, **_startup(env), "PYTHONPATH": str(PROJECT_ROOT)}
        if wire.LIFELINE_ENV in env:
            spare_env[wire.LIFELINE_ENV] = env[wire.LIFELINE_ENV]
        try:
            proc = subprocess.Popen(
                [*_SERVE, SPARE_FLAG],
                cwd=PROJECT_ROOT,
                env=spare_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # as a server: a Ctrl+C at the terminal reaches the lab only
                pass_fds=tuple(pass_fds),
            )
        except OSError:
            return None  # the next server starts cold
        return proc, _startup(env)

    def pids(self) -> set[int]:
        """The spare's process id, if one is ready (a test tells it from a server left behind)."""
        with self._lock:
            return {self._ready[0].pid} if self._ready is not None else set()

    def shutdown(self) -> None:
        """Let the spare go (the lab is done): it is killed at once and reaped."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            _discard(ready[0])


def _give_orders(
    spare: subprocess.Popen[bytes], args: Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path
) -> bool:
    if spare.poll() is not None or spare.stdin is None:
        return False
    orders = {"argv": list(args), "cwd": str(cwd), "env": dict(env), "log": str(log_path)}
    try:
        spare.stdin.write(json.dumps(orders).encode() + b"\n")
        spare.stdin.close()
    except OSError:
        return False
    return True


def _discard(spare: subprocess.Popen[bytes]) -> None:
    """A spare holds nothing but its imports: it is killed at once (no waiting for them to finish) and reaped."""
    with contextlib.suppress(OSError):
        if spare.stdin is not None:
            spare.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        spare.kill()
    spare.wait()


_SPARES = _Spares()
expecting = _SPARES.expecting
launch = _SPARES.launch
pids = _SPARES.pids
shutdown = _SPARES.shutdown

