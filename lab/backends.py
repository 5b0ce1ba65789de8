"""Where a run's database lives: a SQLite file in the run's temp dir, or a throwaway PostgreSQL database.

Each backend gives the server its URL and adds its own witnesses to every step's evidence: for SQLite the
database file and the descriptors the server holds on it; for PostgreSQL the server's own view
(``pg_stat_activity``) and the TCP connections the operating system sees.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal, Protocol

import psutil

from lab import evidence
from lab.errors import BackendError, UsageError

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "Backend",
    "BackendName",
    "PostgresBackend",
    "SqliteBackend",
    "postgres_problem",
    "require_postgres",
]

BackendName = Literal["sqlite", "postgresql"]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 3


class Backend(Protocol):
    name: BackendName
    url: str  # what the server gets as DATABASE_URL

    def create(self) -> None: ...

    def drop(self) -> None: ...

    def evidence(self, server_pid: int) -> dict[str, Any]: ...


class SqliteBackend:
    name: BackendName = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.db_path = workdir / "todos.db"
        self.url = f"sqlite:///{self.db_path}"

    def create(self) -> None:
        """Nothing to do: the file appears when first opened (by the set-up or the app's migrations)."""

    def drop(self) -> None:
        """Nothing to do: the file goes with the run's temp dir."""

    def evidence(self, server_pid: int) -> dict[str, Any]:
        fds = evidence.db_fds(server_pid, self.db_path)
        db_file = evidence.db_file_state(self.db_path)
        return {
            "db_fds": fds.open if fds else None,
            "db_fds_deleted": fds.deleted if fds else None,
            "db_exists": db_file.exists,
            "db_size": db_file.size,
        }

    def files(self) -> list[Path]:
        """The database and the journals SQLite may keep beside it."""
        return [self.db_path, *(self.db_path.with_name(self.db_path.name + s) for s in ("-journal", "-wal", "-shm"))]


class PostgresBackend:
    """A database created for one run on an existing server, and dropped (``WITH (FORCE)``) after it."""

    name: BackendName = "postgresql"

    def __init__(self, admin_url: str, label: str) -> None:
        from sqlalchemy import make_url

        self._admin = make_url(admin_url).set(drivername="postgresql")
        # PostgreSQL silently truncates identifiers to 63 bytes; keep the whole name, or probes miss it.
        self.database = f"faultlab_{label.replace('-', '_')[:45]}_{secrets.token_hex(4)}"
        self.url = self._admin.set(drivername="postgresql+psycopg", database=self.database).render_as_string(
            hide_password=False
        )
        self._port = self._admin.port or 5432
        self._connection: Any = None

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            self._admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )

    def create(self) -> None:
        import psycopg
        from psycopg import sql

        try:
            self._connection = self._connect()
            self._connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        except psycopg.Error as exc:
            raise BackendError(f"could not create the run's PostgreSQL database {self.database}: {exc}") from exc

    def drop(self) -> None:
        import psycopg
        from psycopg import sql

        if self._connection is None:
            return
        try:
            self._connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database))
            )
        except psycopg.Error as exc:
            raise BackendError(f"could not drop the run's PostgreSQL database {self.database}: {exc}") from exc
        finally:
            self._connection.close()
            self._connection = None

    def evidence(self, server_pid: int) -> dict[str, Any]:
        import psycopg

        try:
            row = self._connection.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'idle in transaction')"
                " FROM pg_stat_activity WHERE datname = %s",
                (self.database,),
            ).fetchone()
        except psycopg.Error as exc:
            raise BackendError(f"PostgreSQL stopped answering the lab's probe: {exc}") from exc
        return {"pg_connections": row[0], "pg_idle_in_transaction": row[1], "pg_tcp": self._tcp(server_pid)}

    def _tcp(self, server_pid: int) -> int | None:
        try:
            connections = psutil.Process(server_pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return sum(
            1 for c in connections if c.raddr and c.raddr.port == self._port and c.status == psutil.CONN_ESTABLISHED
        )


def postgres_problem(admin_url: str) -> str | None:
    """Why no PostgreSQL server can be used at ``admin_url``, or None when one answers."""
    import psycopg
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(admin_url).set(drivername="postgresql")
    except ArgumentError:
        return f"{admin_url!r} is not a database URL (expected e.g. {DEFAULT_POSTGRES_URL})"
    try:
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=CONNECT_TIMEOUT_S):
            return None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL server answered at {url.render_as_string(hide_password=True)}: {first}"


def require_postgres(admin_url: str) -> None:
    problem = postgres_problem(admin_url)
    if problem:
        raise UsageError(f"{problem}. Start one, or run without --db to use SQLite.")
