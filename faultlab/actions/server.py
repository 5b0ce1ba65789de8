"""Restart the server: a new process on the same database (optionally from another working directory)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from faultlab.names import RELATIVE_DIR
from faultlab.plugins.registry import Action, NoParams, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


class RestartParams(NoParams):
    cwd: Annotated[str, Field(pattern=RELATIVE_DIR)] | None = Field(
        None, description="start the new server in this directory (inside the run's temp dir)"
    )


@register_action
class Restart(Action):
    name = "restart"
    summary = "restart the server"
    Params = RestartParams

    def label(self, params: RestartParams) -> str:
        return self.summary + (f" from {params.cwd}/" if params.cwd else "")

    def run(self, ctx: RunContext, params: RestartParams) -> str:
        old_pid = ctx.server.pid
        ctx.server.restart(cwd=params.cwd)
        where = f", working directory {params.cwd}/" if params.cwd else ""
        return f"restarted the server (pid {old_pid} → {ctx.server.pid}{where})"
