"""File descriptors a process holds, read from ``/proc/<pid>/fd`` (Linux).

psutil's ``open_files()`` leaves out files that have been deleted, which is exactly the case the lab needs
to see, so the links are read directly. Where there is no ``/proc`` the answer is None: not observable,
which is not the same as zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DELETED", "PROC_ROOT", "open_paths"]

PROC_ROOT = Path("/proc")
DELETED = " (deleted)"


def open_paths(pids: Iterable[int]) -> list[str] | None:
    """Every path the processes hold open (with `` (deleted)`` for unlinked files); None without /proc."""
    if not PROC_ROOT.is_dir():
        return None
    found: list[str] = []
    for pid in pids:
        fd_dir = PROC_ROOT / str(pid) / "fd"
        try:
            entries = os.listdir(fd_dir)
        except FileNotFoundError:
            continue  # the process has just exited
        except PermissionError:
            return None
        for entry in entries:
            try:
                found.append(os.readlink(fd_dir / entry))
            except OSError:  # closed between listdir and readlink
                continue
    return found
