"""The SQL the app sent during a step, counted inside the server by engine events (``before_cursor_execute``)
and read from the harness's shared memory: how many statements, and which."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import Kind, ObservationSpec, Unobservable, Witness, register_witness

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext

MAX_LINES = 12
MAX_CHARS = 240


@dataclass(frozen=True)
class _Reading:
    pids: frozenset[int]
    statements: int
    requests: int
    by_text: dict[str, tuple[int, int]]  # statement -> (count, number of its latest run)


def _read(ctx: RunContext) -> _Reading:
    counters = ctx.counters()
    if counters is None:
        raise Unobservable("the server has published no counters (the lab's harness is not running in it)")
    by_text = ctx.statements()
    total = sum(count for count, _ in by_text.values())
    return _Reading(frozenset(ctx.server.pids()), total, counters.requests_finished, by_text)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _ran_between(before: _Reading, now: _Reading) -> list[tuple[str, int]]:
    """The statements that ran since ``before``, each with its count, in the order they last ran."""
    ran = []
    for text, (count, latest) in now.by_text.items():
        done = count - before.by_text.get(text, (0, 0))[0]
        if done > 0:
            ran.append((latest, text, done))
    return [(text, done) for _, text, done in sorted(ran)]


def describe(ran: list[tuple[str, int]]) -> str:
    """``5× SELECT ...`` per statement, bounded in size."""
    lines = [f"{count}× {_shorten(text)}" for text, count in ran[:MAX_LINES]]
    if len(ran) > MAX_LINES:
        rest = sum(count for _, count in ran[MAX_LINES:])
        lines.append(f"(+{rest} more of {len(ran) - MAX_LINES} other statements)")
    return "\n".join(lines)


@register_witness
class Statements(Witness):
    name = "statements"
    title = "the SQL the app sent (inside the server)"
    observations = (
        ObservationSpec("sql_statements", Kind.COUNT, "SQL statements the app sent to the database in this step"),
        ObservationSpec(
            "sql_per_request",
            Kind.NUMBER,
            "SQL statements per request of this step (its statements / its requests)",
            "request",
        ),
        ObservationSpec("sql", Kind.TEXT, "the statements of this step, each with how many times it ran"),
    )

    def before_step(self, ctx: RunContext) -> None:
        try:
            ctx.marks[self.name] = _read(ctx)
        except Unobservable:
            ctx.marks.pop(self.name, None)

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        now = _read(ctx)
        before = ctx.marks.get(self.name)
        if not isinstance(before, _Reading) or before.pids != now.pids:  # a new server started in this step
            before = _Reading(now.pids, 0, 0, {})
        statements = now.statements - before.statements
        requests = now.requests - before.requests
        values: dict[str, Any] = {"sql_statements": statements, "sql": describe(_ran_between(before, now))}
        if requests > 0:
            values["sql_per_request"] = round(statements / requests, 2)
        return values

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        statements = values.get("sql_statements")
        if not statements:
            return []
        per_request = values.get("sql_per_request")
        found = f"SQL {statements} statement" + ("" if statements == 1 else "s")
        if per_request and per_request != statements:
            found += f" ({per_request:g} per request)"
        return [found]
