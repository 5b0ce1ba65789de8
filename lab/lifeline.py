"""The lab's lifeline to its servers: a pipe whose write end only the lab holds.

However the lab ends (Ctrl+C, SIGTERM, SIGHUP, ``kill -9``, a crash), the operating system closes its end of
the pipe, and each server's watchdog (``lab.serve``) reads end-of-file and stops its process group. So no
server outlives the lab that started it, without any cooperation from the lab at the moment it dies.
"""

from __future__ import annotations

import functools
import os

__all__ = ["read_end"]


@functools.cache
def read_end() -> int:
    """The read end to pass to every server (made once per lab process; the write end is kept open, never
    written, and never inherited by a child: ``os.pipe`` descriptors are not inheritable)."""
    read_fd, write_fd = os.pipe()
    _keep.append(write_fd)
    return read_fd


_keep: list[int] = []  # the write end, held for the life of the process
