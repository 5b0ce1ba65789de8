"""Exceptions that escaped the app, as the harness recorded them, each attributed to the step that sent
its request (the lab's ``x-faultlab-step`` header), not to whichever step happens to look next."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import Kind, ObservationSpec, Witness, register_witness

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext

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
        ObservationSpec(
            "late_errors",
            Kind.TEXT,
            "exceptions from an earlier step's requests that the server raised only after that step ended",
        ),
    )

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        here = f"{ctx.run}:{ctx.step}"
        mine = [r for r in ctx.exceptions if r.step in (None, here)]
        late = [r for r in ctx.exceptions if r.step not in (None, here)]
        return {
            "error": "\n".join(dict.fromkeys(str(r) for r in mine)),
            "exceptions": len(mine),
            "late_errors": "\n".join(dict.fromkeys(f"step {r.step.partition(':')[2]}: {r}" for r in late if r.step)),
        }

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        return [*_part("server", values.get("error")), *_part("server, late", values.get("late_errors"))]


def _part(label: str, error: str | None) -> list[str]:
    if not error:
        return []
    first, *others = error.splitlines()
    text = first if len(first) <= ERROR_CHARS else first[: ERROR_CHARS - 1] + "…"
    return [f"{label}: {text}" + (f" (+{len(others)} other)" if others else "")]
