"""Exceptions that escaped the app, as the harness recorded them, each attributed to the step that sent
its request (the lab's ``x-faultlab-step`` header), not to whichever step happens to look next."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lab.registry import Kind, ObservationSpec, Witness, register_witness

if TYPE_CHECKING:
    from lab.context import RunContext

ERROR_CHARS = 110


@register_witness
class ServerErrors(Witness):
    name = "server_errors"
    title = "the server's exceptions"
    observations = (
        ObservationSpec(
            "error", Kind.TEXT, "the server's exceptions from this step's requests, with their causes, one per line"
        ),
        ObservationSpec("exceptions", Kind.COUNT, "exceptions that escaped the app in this step's requests"),
    )

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        mine = [r for r in ctx.exceptions if r.step in (None, f"{ctx.run}:{ctx.step}")]
        return {"error": "\n".join(dict.fromkeys(str(r) for r in mine)), "exceptions": len(mine)}

    def parts(self, values: Mapping[str, Any]) -> list[str]:
        error = values.get("error")
        if not error:
            return []
        first, *others = error.splitlines()
        text = first if len(first) <= ERROR_CHARS else first[: ERROR_CHARS - 1] + "…"
        return [f"server: {text}" + (f" (+{len(others)} other)" if others else "")]
