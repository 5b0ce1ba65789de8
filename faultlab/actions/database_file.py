"""Delete the SQLite database file (and its journals) under the running server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faultlab.backends.base import SqliteBackend
from faultlab.plugins.registry import SQLITE_ONLY, Action, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


@register_action
class DeleteDb(Action):
    name = "delete_db"
    summary = "delete the database file"
    backends = SQLITE_ONLY

    def run(self, ctx: RunContext, params: Any) -> str:
        assert isinstance(ctx.backend, SqliteBackend), "the registry allows delete_db on sqlite only"
        removed = []
        for path in ctx.backend.files():
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path.name)
        return f"deleted {', '.join(removed)}" if removed else "nothing to delete: no database file"
