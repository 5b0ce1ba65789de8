"""Another connection holds the database's write lock for a while, as a long transaction, a migration or a
backup would. Reads go on; writes wait for it. Released when its time is up, and at the end of the run
whatever happens (clean-up), so a lock never outlives the run."""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field

from lab.backends import PostgresBackend, SqliteBackend
from lab.registry import Action, NoParams, register_action

if TYPE_CHECKING:
    from lab.context import RunContext


class HoldParams(NoParams):
    seconds: float = Field(gt=0, le=10)


@register_action
class HoldWriteLock(Action):
    name = "hold_write_lock"
    summary = "another connection holds the write lock"
    Params = HoldParams

    def __init__(self) -> None:
        self._connection: Any = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def label(self, params: HoldParams) -> str:
        return f"another connection holds the write lock for {params.seconds:g} s"

    def run(self, ctx: RunContext, params: HoldParams) -> str:
        self.release()
        backend = ctx.backend
        connection: Any
        if isinstance(backend, SqliteBackend):
            connection = sqlite3.connect(backend.db_path, isolation_level=None, check_same_thread=False)
            statements = ["BEGIN IMMEDIATE"]  # the RESERVED lock: readers go on, writers wait
            how = "BEGIN IMMEDIATE on todos.db"
        else:
            assert isinstance(backend, PostgresBackend)
            connection = backend.connect_to_run_database()
            statements = ["BEGIN", "LOCK TABLE todos IN EXCLUSIVE MODE"]  # SELECT goes on, INSERT waits
            how = "LOCK TABLE todos IN EXCLUSIVE MODE"
        try:
            for statement in statements:
                connection.execute(statement)
        except BaseException:  # the lock could not be taken (or Ctrl+C): the connection must not outlive it
            connection.close()
            raise
        with self._lock:
            self._connection = connection
            self._timer = threading.Timer(params.seconds, self.release)
            self._timer.daemon = True
            self._timer.start()
        return f"another connection holds the write lock ({how}) for {params.seconds:g} s"

    def release(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._connection is not None:
                try:
                    self._connection.rollback()
                finally:
                    self._connection.close()
                    self._connection = None

    def cleanup(self, ctx: RunContext) -> None:
        self.release()
