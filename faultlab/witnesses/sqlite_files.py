"""The SQLite database file, and every other one in the run's dir: exists, size, rows, held open or not.

The database file's descriptors come from ``/proc``: on a system without it they are "n/a", never 0.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import SQLITE_ONLY, Kind, ObservationSpec, Unobservable, Witness, register_witness
from faultlab.server import procfs

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext

_DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _db_path(ctx: RunContext) -> Path:
    path = getattr(ctx.backend, "db_path", None)
    assert isinstance(path, Path), "a SQLite witness on a backend without a file"
    return path


def _fds(ctx: RunContext) -> tuple[int, int]:
    paths = procfs.open_paths(ctx.server.pids())
    if paths is None:
        raise Unobservable(f"no {procfs.PROC_ROOT} here: the server's file descriptors cannot be read")
    target = str(_db_path(ctx))
    open_count = sum(1 for p in paths if p in (target, target + procfs.DELETED))
    return open_count, sum(1 for p in paths if p == target + procfs.DELETED)


@register_witness
class DatabaseFile(Witness):
    name = "database_file"
    title = "the database file"
    backends = SQLITE_ONLY
    observations = (
        ObservationSpec("db_exists", Kind.FLAG, "the database file exists"),
        ObservationSpec("db_size", Kind.COUNT, "the database file's size in bytes"),
    )

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        try:
            return {"db_exists": True, "db_size": _db_path(ctx).stat().st_size}
        except FileNotFoundError:
            return {"db_exists": False, "db_size": None}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        if values.get("db_exists") is False:
            return ["db file missing"]
        return ["db file empty (0 B)"] if values.get("db_size") == 0 else []


@register_witness
class DatabaseFds(Witness):
    name = "database_fds"
    title = "the server's file descriptors on the database file (the operating system)"
    backends = SQLITE_ONLY
    observations = (
        ObservationSpec("db_fds", Kind.COUNT, "the server's open file descriptors on the database file"),
        ObservationSpec("db_fds_deleted", Kind.COUNT, "of those, descriptors on a deleted file"),
    )
    sampled = ("db_fds",)
    charts = (("db_fds", "file descriptors on the database file"),)

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        open_count, deleted = _fds(ctx)
        return {"db_fds": open_count, "db_fds_deleted": deleted}

    def sample(self, ctx: RunContext) -> dict[str, int | float]:
        return {"db_fds": _fds(ctx)[0]}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        if (fds := values.get("db_fds")) is None:
            return []
        deleted = f" ({values['db_fds_deleted']} deleted)" if values.get("db_fds_deleted") else ""
        return [f"fds {fds}{deleted}"]


def _rows(path: Path) -> str:
    """Rows of ``todos``, read-only and without waiting: a busy or table-less file says so instead."""
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=0)
    except sqlite3.Error as exc:
        return f"unreadable ({exc})"
    try:
        rows = connection.execute("SELECT count(*) FROM todos").fetchone()[0]
        return f"{rows} row{'' if rows == 1 else 's'}"
    except sqlite3.Error as exc:
        return "no todos table" if "no such table" in str(exc) else f"unreadable ({exc})"
    finally:
        connection.close()


def _database_files(workdir: Path) -> list[Path]:
    return sorted(p for p in workdir.rglob("*") if p.suffix in _DB_SUFFIXES and p.is_file())


@register_witness
class DatabaseFileCount(Witness):
    name = "database_file_count"
    title = "how many SQLite databases the run's dir holds"
    backends = SQLITE_ONLY
    observations = (ObservationSpec("db_files_count", Kind.COUNT, "database files in the run's dir"),)

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        return {"db_files_count": len(_database_files(ctx.workdir))}


@register_witness
class DatabaseFiles(Witness):
    """Which file the server really uses needs ``/proc``: without it the whole listing is n/a, not a guess."""

    name = "database_files"
    title = "every SQLite database in the run's dir"
    backends = SQLITE_ONLY
    observations = (
        ObservationSpec(
            "db_files",
            Kind.TEXT,
            "each database file in the run's dir: rows in todos, and whether the server has it open",
        ),
    )

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        held = procfs.open_paths(ctx.server.pids())
        if held is None:
            raise Unobservable(f"no {procfs.PROC_ROOT} here: which database file the server holds open is unknown")
        described = [
            f"{path.relative_to(ctx.workdir).as_posix()}: {_rows(path)}, "
            f"{'held open by the server' if str(path) in held else 'not open'}"
            for path in _database_files(ctx.workdir)
        ]
        return {"db_files": "\n".join(described)}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        """Only when there is more than one file: one is the normal case, and the other witnesses show it."""
        if (values.get("db_files_count") or 0) < 2:
            return []
        return [f"file {line}" for line in (values.get("db_files") or "").splitlines()]
