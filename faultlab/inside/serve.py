"""A lab server process: uvicorn, plus a watchdog that stops the server as soon as the lab is gone.

``python -m faultlab.inside.serve UVICORN-ARGS``: runs uvicorn's own command line in this process, after starting a
thread that blocks on the lifeline (``faultlab.server.lifeline``) whose descriptor is in ``FAULTLAB_LIFELINE``. When
the lab ends, however it ends, the read returns end-of-file: the watchdog asks the server's whole process
group (uvicorn and its workers) to shut down, and kills what is left after a grace period.

``python -m faultlab.inside.serve --fork-server``: the lab's fork server (``faultlab.server.forkserver``). It imports
the libraries every server imports, once, then forks a server for each order it reads (a command line, a
working directory, an environment and a log): the child goes on exactly as a cold start would, without
paying for those imports again.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from faultlab.inside import wire

GRACE_S = 3.0
FORK_SERVER_FLAG = "--fork-server"
# What every catalogue server imports before the app's own code runs (uvicorn's command line, faultlab.inside.harness,
# app.main, app.migrate); none of it reads the app's settings at import time. tests/test_forkserver.py holds
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


def _fork_on_orders() -> list[str] | None:
    """As the fork server: import what every server imports, then fork a server per order (a JSON line on
    standard input) and tell the lab, on standard output, ``pid N`` as each child starts and ``exit N CODE``
    when it ends (the fork server is its parent: it reaps it). Returns the order's command line in the child;
    None in the fork server itself, once the lab is done with it (end-of-file, however the lab ended)."""
    retitle: Callable[[str], None] | None
    try:  # imported before the environment is replaced: it cannot retitle the process after that
        from setproctitle import setproctitle as retitle
    except ImportError:  # an install that predates it: `ps` shows "--fork-server", nothing else changes
        retitle = None
    for name in PRELOADED:
        with contextlib.suppress(ImportError):  # the server itself fails on it, into its log, where the lab looks
            importlib.import_module(name)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wake-up descriptor hears of it
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                _reap()
                continue
            data = os.read(0, 65536)
            if not data:
                return None
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                orders = json.loads(line)
                grouped_r, grouped_w = os.pipe()
                child = os.fork()
                if child == 0:
                    selector.close()
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    for fd in (wake_r, wake_w, grouped_r):
                        os.close(fd)
                    os.setsid()  # as a cold server: a Ctrl+C at the terminal reaches the lab only
                    os.close(grouped_w)  # its session and process group exist: the lab may signal them
                    return _become(orders, retitle)
                os.close(grouped_w)
                os.read(grouped_r, 1)  # end-of-file once the child has its own group (or is gone)
                os.close(grouped_r)
                _tell(f"pid {child}")


def _reap() -> None:
    while True:
        try:
            child, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if child == 0:
            return
        _tell(f"exit {child} {os.waitstatus_to_exitcode(status)}")


def _tell(line: str) -> None:
    data = (line + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _become(orders: dict[str, Any], retitle: Callable[[str], None] | None) -> list[str]:
    """Make this forked child the server a cold start of ``orders`` would have begun."""
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
    server_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    base = sys.path[1 + len(server_paths) :]
    os.chdir(orders["cwd"])
    os.environ.clear()
    os.environ.update(orders["env"])
    sys.path[:] = [os.getcwd(), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p], *base]
    return args


def main() -> None:
    args: list[str] | None = sys.argv[1:]
    if args == [FORK_SERVER_FLAG]:
        args = _fork_on_orders()
        if args is None:
            return
    lifeline = os.environ.get(wire.LIFELINE_ENV)
    if lifeline is not None:
        threading.Thread(target=_watch, args=(int(lifeline),), name="lab-lifeline", daemon=True).start()
    import uvicorn

    uvicorn.main(args=args, prog_name="uvicorn")


if __name__ == "__main__":
    main()
