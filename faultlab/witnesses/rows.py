"""The rows in ``todos``, counted by the lab in the database itself: what was really written, whatever the
API answered (a 500 after a commit, a 201 without one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faultlab.errors import BackendError
from faultlab.plugins.registry import Kind, ObservationSpec, Unobservable, Witness, register_witness

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


@register_witness
class DatabaseRows(Witness):
    name = "database_rows"
    title = "the rows in the database, counted by the lab"
    observations = (ObservationSpec("db_rows", Kind.COUNT, "rows in todos, counted in the database by the lab"),)

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        try:
            return {"db_rows": ctx.backend.count_rows("todos")}  # None: no table yet, nothing was written
        except BackendError as exc:
            raise Unobservable(str(exc)) from exc

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        rows = values.get("db_rows")
        return [] if rows is None else [f"db rows {rows}"]
