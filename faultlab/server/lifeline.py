"""The lab's lifeline to its servers: a pipe whose write end only the lab holds.

However the lab ends (Ctrl+C, SIGTERM, SIGHUP, ``kill -9``, a crash), the operating system closes its end of
the pipe, and each server's watchdog (``faultlab.inside.serve``) reads end-of-file and stops its process group. So no
server outlives the lab that started it, without any cooperation from the lab at the moment it dies.
"""

from __future__ import annotations

import os
import threading

__all__ = ["read_end"]


def read_end() -> int:
    """The read end to pass to every server (made once per lab process, even when two runs ask at once; the
    write end is kept open, never written, and never inherited by a child: ``os.pipe`` descriptors are not
    inheritable)."""
    with _lock:
        if not _ends:
            _ends.extend(os.pipe())
        return _ends[0]


_lock = threading.Lock()
_ends: list[int] = []  # read end, write end: held for the life of the process
