"""Where a run's database lives: a SQLite file in the run's temp dir, or a throwaway PostgreSQL database
(``faultlab.backends.postgres``). Each backend gives the server its URL and what the lab needs of the database itself
(rows counted, a write lock held), so that no plugin needs to know which backend it runs on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from faultlab.backends.postgres import (
    ACTIVITY_SQL,
    DEFAULT_POSTGRES_URL,
    PostgresBackend,
    database_choice,
    postgres_admin_url,
    postgres_problem,
    redact,
    require_postgres,
)
from faultlab.errors import BackendError
from faultlab.names import BackendName

# PostgreSQL's are re-exported: to their users, the backends are one thing.
__all__ = [
    "ACTIVITY_SQL",
    "DEFAULT_POSTGRES_URL",
    "Backend",
    "BackendName",
    "PostgresBackend",
    "SqliteBackend",
    "database_choice",
    "postgres_admin_url",
    "postgres_problem",
    "redact",
    "require_postgres",
]


class Backend(Protocol):
    name: BackendName
    url: str  # what the server gets as DATABASE_URL (may hold a password: never print it)

    def create(self) -> None: ...

    def drop(self) -> None: ...

    def resources(self) -> dict[str, str]:
        """What the run created outside its temp dir, by name, for the journal (no secrets)."""
        ...

    def count_rows(self, table: str) -> int | None:
        """Rows in ``table``, read by the lab on a connection of its own; None when there is no such table."""
        ...

    def take_write_lock(self, wait_s: float) -> tuple[Any, str] | None:
        """A connection of the lab's own holding the write lock on every table (reads go on, writes wait),
        and how, in words; None when the app's own lock is not released within ``wait_s``."""
        ...


class SqliteBackend:
    name: BackendName = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.db_path = workdir / "todos.db"
        self.url = f"sqlite:///{self.db_path}"

    def create(self) -> None:
        """Nothing to do: the file appears when first opened (by the set-up or the app's migrations)."""

    def drop(self) -> None:
        """Nothing to do: the file goes with the run's temp dir."""

    def resources(self) -> dict[str, str]:
        return {}

    def count_rows(self, table: str) -> int | None:
        """Read-only and without waiting; None when there is no file or no table (nothing was written)."""
        import sqlite3

        if not self.db_path.exists():
            return None
        try:
            connection = sqlite3.connect(f"{self.db_path.as_uri()}?mode=ro", uri=True, timeout=0)
        except sqlite3.Error:
            return None
        try:
            count: int = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            return count
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise BackendError(f"the database file could not be read at that moment: {exc}") from exc
        finally:
            connection.close()

    def take_write_lock(self, wait_s: float) -> tuple[Any, str] | None:
        import sqlite3

        connection = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False, timeout=wait_s)
        try:
            connection.execute("BEGIN IMMEDIATE")  # the RESERVED lock: readers go on, writers wait
        except sqlite3.OperationalError:
            connection.close()
            return None
        except BaseException:  # Ctrl+C: the connection must not outlive it
            connection.close()
            raise
        return connection, f"BEGIN IMMEDIATE on {self.db_path.name}"

    def files(self) -> list[Path]:
        """The database and the journals SQLite may keep beside it."""
        return [self.db_path, *(self.db_path.with_name(self.db_path.name + s) for s in ("-journal", "-wal", "-shm"))]
