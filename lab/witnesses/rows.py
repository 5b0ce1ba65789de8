"""The rows in ``todos``, counted by the lab in the database itself: what was really written, whatever the
API answered (a 500 after a commit, a 201 without one)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lab.backends import PostgresBackend, SqliteBackend
from lab.errors import BackendError
from lab.registry import Kind, ObservationSpec, Unobservable, Witness, register_witness

if TYPE_CHECKING:
    from lab.context import RunContext

COUNT = "SELECT count(*) FROM todos"


def _sqlite_rows(backend: SqliteBackend) -> int | None:
    """Read-only and without waiting; None when there is no file or no table (nothing was written)."""
    if not backend.db_path.exists():
        return None
    try:
        connection = sqlite3.connect(f"{backend.db_path.as_uri()}?mode=ro", uri=True, timeout=0)
    except sqlite3.Error:
        return None
    try:
        count: int = connection.execute(COUNT).fetchone()[0]
        return count
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise Unobservable(f"the database file could not be read at that moment: {exc}") from exc
    finally:
        connection.close()


@register_witness
class DatabaseRows(Witness):
    name = "database_rows"
    title = "the rows in the database, counted by the lab"
    observations = (ObservationSpec("db_rows", Kind.COUNT, "rows in todos, counted in the database by the lab"),)

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        backend = ctx.backend
        if isinstance(backend, SqliteBackend):
            return {"db_rows": _sqlite_rows(backend)}
        assert isinstance(backend, PostgresBackend)
        try:
            return {"db_rows": backend.query_run_database(COUNT)[0][0]}
        except BackendError as exc:
            if "does not exist" in str(exc):
                return {"db_rows": None}
            raise

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        rows = values.get("db_rows")
        return [] if rows is None else [f"db rows {rows}"]
