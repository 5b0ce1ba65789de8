"""Witnesses outside the app: the operating system's file descriptors and the database file itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DbFileState", "FdCount", "db_fds", "db_file_state"]

_DELETED = " (deleted)"


@dataclass(frozen=True)
class FdCount:
    open: int
    deleted: int


@dataclass(frozen=True)
class DbFileState:
    exists: bool
    size: int | None


def db_fds(pid: int, db_path: Path) -> FdCount | None:
    """Descriptors the process holds on the database file, read from ``/proc/<pid>/fd``.

    psutil's ``open_files()`` leaves out files that have been deleted, which is exactly the case the lab
    needs to see, so the links are read directly. ``None`` where there is no ``/proc`` (not Linux).
    """
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = os.listdir(fd_dir)
    except (FileNotFoundError, PermissionError):
        return None
    target = str(db_path)
    open_count = deleted = 0
    for entry in entries:
        try:
            link = os.readlink(fd_dir / entry)
        except OSError:  # closed between listdir and readlink
            continue
        if link == target:
            open_count += 1
        elif link == target + _DELETED:
            open_count += 1
            deleted += 1
    return FdCount(open=open_count, deleted=deleted)


def db_file_state(db_path: Path) -> DbFileState:
    try:
        return DbFileState(exists=True, size=db_path.stat().st_size)
    except FileNotFoundError:
        return DbFileState(exists=False, size=None)
