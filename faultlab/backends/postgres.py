"""A throwaway PostgreSQL database (and a role that owns it) for each run, on a server that is already
running; what the lab reads there on connections of its own; and the URLs a person gives for that server."""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from faultlab import owner
from faultlab.backends.pg_server import (
    CONNECT_TIMEOUT_S,
    DEFAULT_POSTGRES_URL,
    admin_connection,
    database_choice,
    postgres_admin_url,
    postgres_problem,
    redact,
    require_postgres,
)
from faultlab.errors import BackendError
from faultlab.names import BackendName

if TYPE_CHECKING:
    from collections.abc import Iterator

    from faultlab.backends.cluster import OwnCluster

__all__ = [
    "ACTIVITY_SQL",
    "DEFAULT_POSTGRES_URL",
    "PostgresBackend",
    "admin_connection",
    "database_choice",
    "postgres_admin_url",
    "postgres_problem",
    "redact",
    "require_postgres",
]  # the server's choice and reach are pg_server's; named here too, as the backend's readers look for them


class PostgresBackend:
    """A database and a role that owns it, created for one run on an existing server and dropped after it.

    The app connects as that role, not as the administrator: a superuser ignores connection limits and
    sees every database, so faults that depend on them could not show.
    """

    name: BackendName = "postgresql"

    def __init__(self, admin_url: str, label: str) -> None:
        from sqlalchemy import make_url

        self._admin = make_url(admin_url).set(drivername="postgresql")
        # PostgreSQL silently truncates identifiers to 63 bytes; keep the whole name, or probes miss it.
        self.database = f"faultlab_{label.replace('-', '_')[:45]}_{secrets.token_hex(4)}"
        self.role = self.database
        password = secrets.token_urlsafe(18)
        self.url = self._admin.set(
            drivername="postgresql+psycopg", username=self.role, password=password, database=self.database
        ).render_as_string(hide_password=False)
        self._password = password
        self.port = self._admin.port or 5432
        self._connection: Any = None  # the administrator's: create, drop, and the actions
        self._watching: Any = None  # the witnesses' own, so that sampling never waits on an action's statement
        self._in_run_database: Any = None  # the lab's own connection to the run's database, for witnesses
        self.cluster: OwnCluster | None = None  # the server is the run's own (setup.database = "own-cluster")

    def _connect(self) -> Any:
        return admin_connection(self._admin.render_as_string(hide_password=False))

    def _admin_execute(self, statement: Any, params: Any = ()) -> Any:
        """On the administrator's connection, opened again if the server restarted under it (own cluster)."""
        import psycopg

        try:
            return self._connection.execute(statement, params)
        except psycopg.OperationalError:
            if not self._connection.broken:
                raise
            self._connection.close()
            self._connection = self._connect()
            return self._connection.execute(statement, params)

    def create(self) -> None:
        import psycopg
        from psycopg import sql

        try:
            self._connection = self._connect()
            # Only a SCRAM verifier travels in the statement, so no server log (log_statement) holds the password.
            verifier = self._connection.pgconn.encrypt_password(
                self._password.encode(), self.role.encode(), b"scram-sha-256"
            ).decode()
            self._connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(self.role), sql.Literal(verifier))
            )
            self._connection.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.database), sql.Identifier(self.role))
            )
            # The owner record lets a later lab drop them if this one dies without cleaning up (backends.sweep).
            record = sql.Literal(owner.me().to_json())
            self._connection.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(self.role), record))
            self._connection.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(self.database), record)
            )
        except psycopg.Error as exc:
            raise BackendError(f"could not create the run's PostgreSQL database {self.database}: {exc}") from exc

    def drop(self) -> None:
        """Drop the database (``WITH (FORCE)``: its sessions go too) and the role; safe to call twice."""
        import psycopg
        from psycopg import sql

        for connection in (self._in_run_database, self._watching):
            if connection is not None:
                connection.close()
        self._in_run_database = self._watching = None
        if self._connection is None:
            return
        try:
            self._admin_execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database))
            )
            self._admin_execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.role)))
        except psycopg.Error as exc:
            raise BackendError(f"could not drop the run's PostgreSQL database {self.database}: {exc}") from exc
        finally:
            self._connection.close()
            self._connection = None

    def resources(self) -> dict[str, str]:
        return {"database": self.database, "role": self.role}

    def count_rows(self, table: str) -> int | None:
        from psycopg import sql

        try:
            return int(self.query_run_database(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))[0][0])
        except BackendError as exc:
            if "does not exist" in str(exc):
                return None
            raise

    def take_write_lock(self, wait_s: float) -> tuple[Any, str] | None:
        import psycopg
        from psycopg import sql

        connection = self.connect_to_run_database()
        try:
            connection.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{wait_s:g}s")))
            tables = [
                sql.Identifier(schema, name)
                for schema, name in connection.execute(
                    "SELECT schemaname, tablename FROM pg_tables"
                    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                ).fetchall()
            ]
            if tables:  # EXCLUSIVE: SELECT goes on, INSERT, UPDATE and DELETE wait
                connection.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.SQL(", ").join(tables)))
        except psycopg.errors.LockNotAvailable:
            connection.close()
            return None
        except BaseException:
            connection.close()
            raise
        return connection, "LOCK TABLE ... IN EXCLUSIVE MODE on every table"

    def query_run_database(self, statement: Any) -> list[tuple[Any, ...]]:
        """A read on the lab's own autocommit connection to the run's database (never one of the app's)."""

        with self.readable() as why:
            if why:
                raise BackendError(why)  # stopped or paused by the experiment: a read would fail, or hang
            return self._read_run_database(statement)

    def _read_run_database(self, statement: Any) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            for attempt in (1, 2):  # again once on a new connection if the server restarted under this one
                if self._in_run_database is None or self._in_run_database.closed:
                    self._in_run_database = self.connect_to_run_database()
                    self._in_run_database.autocommit = True
                try:
                    return list(self._in_run_database.execute(statement).fetchall())
                except psycopg.OperationalError:
                    if attempt == 2 or not self._in_run_database.broken:
                        raise
                    self._in_run_database.close()
            raise AssertionError("unreachable")
        except psycopg.Error as exc:
            raise BackendError(f"the lab could not read the run's database: {exc}") from exc

    @contextlib.contextmanager
    def readable(self) -> Iterator[str | None]:
        """``with backend.readable() as why:`` on the run's own cluster, why a read must not be sent now; while
        the block runs no pause can begin (a read sent to a paused server would never end)."""
        if self.cluster is None:
            yield None
        else:
            with self.cluster.readable() as why:
                yield why

    def connect_to_run_database(self) -> Any:
        """A connection of the lab's own (as the administrator) to the run's database, for actions."""
        import psycopg

        url = self._admin.set(database=self.database).render_as_string(hide_password=False)
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S)

    def terminate_app_sessions(self, deadline_s: float = 5.0) -> tuple[int, int]:
        """End every session of the run's role, as a restart of PostgreSQL would: (ended, still listed after
        ``deadline_s``). pg_terminate_backend only signals, so this waits (bounded) until they are gone."""
        import time

        pids = [
            pid
            for (pid,) in self.query(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s", (self.database, self.role)
            )
        ]
        signalled = self.query("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        ended = sum(1 for (done,) in signalled if done)
        deadline = time.monotonic() + deadline_s
        while True:
            (left,) = self.query("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))[0]
            if left == 0 or time.monotonic() >= deadline:
                return ended, left
            time.sleep(0.01)

    def query(self, statement: Any, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A statement on the administrator's connection (not the app's role), for actions."""
        if self._connection is None:
            raise BackendError("the run's PostgreSQL database is not set up")
        if self._connection.broken:  # the server restarted under it (own cluster)
            self._connection = self._connect()
        return _execute(self._connection, statement, params)

    def activity(self) -> tuple[int, int, int]:
        """The app's sessions on the run's database: (all, idle in transaction, waiting on a lock)."""
        total, idle, waiting = self.watch(ACTIVITY_SQL, {"database": self.database, "role": self.role})[0]
        return int(total), int(idle), int(waiting)

    def watch(self, statement: Any, params: Any = ()) -> list[tuple[Any, ...]]:
        """A read for the witnesses, as the administrator, on a connection no action uses: sampling in the
        timeline's thread never queues behind an action's statement, nor an action behind a sample."""
        if self._connection is None:
            raise BackendError("the run's PostgreSQL database is not set up")
        if self._watching is None or self._watching.closed or self._watching.broken:
            self._watching = self._connect()
        try:
            return _execute(self._watching, statement, params)
        except BackendError:
            if not self._watching.broken:
                raise
            self._watching = self._connect()  # once more: the server restarted under the old one
            return _execute(self._watching, statement, params)


def _execute(connection: Any, statement: Any, params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    try:
        cursor = connection.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []
    except psycopg.Error as exc:
        raise BackendError(f"PostgreSQL stopped answering the lab: {exc}") from exc


# PostgreSQL's own view of the app's sessions, the one query for it in the lab (the witnesses, the doctor and
# the pytest plugin): sessions on a database (of one role, or any), idle in a transaction, waiting on a lock.
# Never counted: the connection that asks.
ACTIVITY_SQL = (
    "SELECT count(*), count(*) FILTER (WHERE state = 'idle in transaction'),"
    " count(*) FILTER (WHERE wait_event_type = 'Lock')"
    " FROM pg_stat_activity WHERE datname = %(database)s AND usename = coalesce(%(role)s, usename)"
    " AND pid <> pg_backend_pid()"
)
