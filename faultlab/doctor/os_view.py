"""The operating system's count of the app's connections to its database, read from outside the server, so
that it sees a connection whatever library opened it (a SQLAlchemy engine the doctor found or not, the
driver used directly, another engine).

SQLite: the file descriptors the server's processes hold on the database files in the doctor's temp dir
(the database and its ``-journal`` or ``-wal``, deleted or not), read from ``/proc/<pid>/fd`` by
``faultlab.server.procfs``. PostgreSQL: the server's established TCP connections to the database server, counted by the
catalogue's ``pg_tcp`` witness. Reading either sends nothing to the app.
"""

from __future__ import annotations

from pathlib import Path

from faultlab.backends.base import PostgresBackend
from faultlab.plugins.context import RunContext
from faultlab.plugins.registry import Unobservable
from faultlab.server import procfs
from faultlab.witnesses.postgres import PgTcp
from faultlab.witnesses.sqlite_files import _DB_SUFFIXES

__all__ = ["OsView", "Unobservable"]

_JOURNALS = ("-journal", "-wal")  # per connection; the -shm is mapped once per process, not per connection


def _is_database_file(path: str, workdir: Path) -> bool:
    """A database file in ``workdir`` (or one of its journals), by its name: SQLite's own suffixes."""
    held = Path(path.removesuffix(procfs.DELETED))
    name = held.name
    for journal in _JOURNALS:
        name = name.removesuffix(journal)
    return Path(name).suffix in _DB_SUFFIXES and held.is_relative_to(workdir)


class OsView:
    """One count, read again and again during a checkup: ``read()`` raises ``Unobservable`` where the
    operating system does not show it (no ``/proc``, a process whose sockets may not be read)."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.on_postgresql = isinstance(context.backend, PostgresBackend)
        # /proc shows the links resolved: compare with the temp dir resolved too (/tmp may be a link).
        self.workdir = context.workdir.resolve()

    @property
    def what(self) -> str:
        """What is counted, as the reports name it."""
        if self.on_postgresql:
            return "TCP connections to PostgreSQL"
        return "file descriptors on the database files"

    def read(self) -> int:
        if self.on_postgresql:
            return int(PgTcp().observe(self.context)["pg_tcp"])
        paths = procfs.open_paths(self.context.server.pids())
        if paths is None:
            raise Unobservable(f"no readable {procfs.PROC_ROOT} here: the server's file descriptors cannot be read")
        return sum(1 for path in paths if _is_database_file(path, self.workdir))
