"""The lab's lifeline to its servers: a pipe whose write end only the lab holds.

However the lab ends (Ctrl+C, SIGTERM, SIGHUP, ``kill -9``, a crash), the operating system closes its end of
the pipe, and each server's watchdog (``faultlab.inside.serve``) reads end-of-file and stops its process group. So no
server outlives the lab that started it, without any cooperation from the lab at the moment it dies.

A process that cannot watch a pipe itself (a PostgreSQL cluster, PgBouncer) gets a watcher of its own:
``spawn_watcher`` starts one (``python -m MODULE ...``), which calls ``wait_for_lab_end`` and then stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from faultlab.inside import wire
from faultlab.server.process import spawn

__all__ = ["read_end", "spawn_watcher", "wait_for_lab_end"]


def read_end() -> int:
    """The read end to pass to every server (made once per lab process, even when two runs ask at once; the
    write end is kept open, never written, and never inherited by a child: ``os.pipe`` descriptors are not
    inheritable)."""
    with _lock:
        if not _ends:
            _ends.extend(os.pipe())
        return _ends[0]


def spawn_watcher(module: str, *args: str, cwd: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m module *args`` in its own session, holding the lifeline's read end (``FAULTLAB_LIFELINE``)."""
    lifeline = read_end()
    return spawn(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, wire.LIFELINE_ENV: str(lifeline)},
        log_path=log_path,
        pass_fds=(lifeline,),
    )


def wait_for_lab_end() -> None:
    """In a watcher ``spawn_watcher`` started: block until the lab is gone (end-of-file on the lifeline; the lab
    never writes). Ctrl+C is ignored: only the lab's end, or the lab's own SIGTERM, ends a watcher."""
    fd = int(os.environ[wire.LIFELINE_ENV])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass


_lock = threading.Lock()
_ends: list[int] = []  # read end, write end: held for the life of the process
