"""A lab server process: uvicorn, plus a watchdog that stops the server as soon as the lab is gone.

``python -m faultlab.inside.serve UVICORN-ARGS``: runs uvicorn's own command line in this process, after starting a
thread that blocks on the lifeline (``faultlab.server.lifeline``) whose descriptor is in ``FAULTLAB_LIFELINE``. When
the lab ends, however it ends, the read returns end-of-file: the watchdog asks the server's whole process
group (uvicorn and its workers) to shut down, and kills what is left after a grace period.

``python -m faultlab.inside.serve --spare``: the same, started ahead of need (``server.spare``): it imports the
libraries every server imports, then waits for its orders (the command line above, a working directory, an
environment and a log) and goes on exactly as a cold start would.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from faultlab.inside import wire

GRACE_S = 3.0
SPARE_FLAG = "--spare"
# What every catalogue server imports before the app's own code runs (uvicorn's command line, faultlab.inside.harness,
# app.main, app.migrate); none of it reads the app's settings at import time. tests/test_spare.py holds
# this to be a subset of what a cold server imports.
PRELOADED = (
    "alembic.command",
    "alembic.config",
    "fastapi",
    "fastapi_offline",
    "sqlalchemy",
    "sqlalchemy.orm",
    "uvicorn.main",
)


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass  # the lab never writes; anything read is ignored
    except OSError:
        pass
    os.killpg(os.getpgrp(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _await_orders() -> list[str] | None:
    """As a spare (``server.spare``): import what every server imports, then wait for the server's command line,
    working directory, environment and log on standard input, and become that server as a cold start would
    have begun it. None: the lab did not need this spare (end-of-file)."""
    retitle: Callable[[str], None] | None
    try:  # imported before the environment is replaced: it cannot retitle the process after that
        from setproctitle import setproctitle as retitle
    except ImportError:  # an install that predates it: `ps` shows "--spare", nothing else changes
        retitle = None
    for name in PRELOADED:
        with contextlib.suppress(ImportError):  # the server itself fails on it, into its log, where the lab looks
            importlib.import_module(name)
    line = sys.stdin.buffer.readline()
    if not line:
        return None
    orders = json.loads(line)
    args = [str(arg) for arg in orders["argv"]]
    sys.argv[1:] = args
    if retitle is not None:
        retitle(" ".join([sys.executable, "-m", "faultlab.inside.serve", *args]))  # `ps` shows the server
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    log = os.open(orders["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    # sys.path as ``python -m`` would have made it in that directory with that PYTHONPATH.
    spare_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    base = sys.path[1 + len(spare_paths) :]
    os.chdir(orders["cwd"])
    os.environ.clear()
    os.environ.update(orders["env"])
    sys.path[:] = [os.getcwd(), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p], *base]
    return args


def main() -> None:
    lifeline = os.environ.get(wire.LIFELINE_ENV)
    if lifeline is not None:
        threading.Thread(target=_watch, args=(int(lifeline),), name="lab-lifeline", daemon=True).start()
    args: list[str] | None = sys.argv[1:]
    if args == [SPARE_FLAG]:
        args = _await_orders()
        if args is None:
            return
    import uvicorn

    uvicorn.main(args=args, prog_name="uvicorn")


if __name__ == "__main__":
    main()
