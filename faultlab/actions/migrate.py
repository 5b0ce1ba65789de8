"""Run the app's alembic migrations to head, from outside the server (as a deploy step would)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import Action, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


@register_action
class Migrate(Action):
    name = "migrate"
    summary = "alembic upgrade head"

    def run(self, ctx: RunContext, params: Any) -> str:
        from faultlab.backends.schema import migrate_to_head

        return migrate_to_head(ctx.backend.url)
