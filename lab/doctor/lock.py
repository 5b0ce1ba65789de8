"""Another connection holds the app's database's write lock for a moment, released by a timer: reads go on,
writes wait. The doctor holds it while a write runs, so that a route that waits on the database on the
event loop (sync work in ``async def``) shows as a blocked loop, as it does in production when a migration,
a backup or a long transaction holds the lock (the catalogue's async-blocking).

Unlike the lab's ``hold_write_lock`` action, which knows the todo app's table, this locks whatever tables
the user's app made.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lab.backends import Backend, PostgresBackend, SqliteBackend

__all__ = ["write_lock"]


WAIT_S = 2  # a lock the app itself holds (a write it never committed) is not waited for longer


def _take(backend: Backend) -> Any:
    """A connection holding the lock, or None when the app holds a conflicting one (then nothing is held)."""
    if isinstance(backend, SqliteBackend):
        connection: Any = sqlite3.connect(
            backend.db_path, isolation_level=None, check_same_thread=False, timeout=WAIT_S
        )
        try:
            connection.execute("BEGIN IMMEDIATE")  # the RESERVED lock: readers go on, writers wait
        except sqlite3.OperationalError:
            connection.close()
            return None
        return connection
    import psycopg  # only on PostgreSQL
    from psycopg import sql

    assert isinstance(backend, PostgresBackend)
    connection = backend.connect_to_run_database()
    connection.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{WAIT_S}s")))
    tables = [
        sql.Identifier(schema, name)
        for schema, name in connection.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    ]
    try:
        if tables:  # EXCLUSIVE: SELECT goes on, INSERT, UPDATE and DELETE wait
            connection.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.SQL(", ").join(tables)))
    except psycopg.errors.LockNotAvailable:
        connection.close()
        return None
    return connection


@contextmanager
def write_lock(backend: Backend, seconds: float) -> Iterator[bool]:
    """Held for ``seconds`` (a timer releases it, even while the caller is blocked) or until the block ends;
    yields whether it could be taken."""
    connection = _take(backend)
    guard = threading.Lock()

    def release() -> None:
        nonlocal connection
        with guard:
            if connection is not None:
                try:
                    connection.rollback()
                finally:
                    connection.close()
                    connection = None

    timer = threading.Timer(seconds, release)
    timer.daemon = True
    timer.start()
    try:
        yield connection is not None
    finally:
        timer.cancel()
        release()
