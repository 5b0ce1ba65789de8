"""PostgreSQL's own count of the app's sessions idle in transaction (the catalogue's ``pg_activity`` witness):
left so after the requests, or sitting so for a while during one; at the line where the idle connection was
checked out of the pool, which is where its transaction began (a session begins one with its first statement,
and that statement checks the connection out). PostgreSQL cannot say which pooled connection is which session,
so the line is named only when every candidate connection was taken at the same one."""

from __future__ import annotations

from typing import Any

from faultlab.doctor.contract import Check, CheckupContext, Exercised
from faultlab.doctor.report import Finding, Location
from faultlab.doctor.where import locate
from faultlab.names import POSTGRESQL_ONLY

__all__ = ["IDLE_DURING_MS", "IdleAfter", "IdleDuring"]

IDLE_DURING_MS = 500.0  # idle in transaction this long during a request (a glimpse between statements is not)


class IdleAfter(Check):
    """Sessions left idle in transaction once the requests are done."""

    name = "idle in transaction"
    backends = POSTGRESQL_ONLY

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        checked = exercised.checked
        idle = checked.idle_in_transaction
        if not idle or idle[-1] <= idle[0]:
            return []
        location, unlocated = _began_at(ctx, exercised.leak_sites, "stayed checked out after the requests")
        return [
            Finding(
                "idle in transaction",
                checked.operation,
                f"PostgreSQL's sessions idle in transaction after each request: {'→'.join(map(str, idle))}; each "
                "holds its locks and snapshot until the session is closed (a transaction that nothing ends)",
                location=location,
                unlocated=unlocated,
            )
        ]


class IdleDuring(Check):
    """A session that sat idle in transaction for ``IDLE_DURING_MS`` or more while the timed request ran (the
    sessions sampled every few ms beside the event loop's probe); once per operation with ``IdleAfter``'s."""

    name = "idle in transaction"
    backends = POSTGRESQL_ONLY

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        if not exercised.timed or exercised.idle_ms < IDLE_DURING_MS:
            return []
        if any(f.kind == "idle in transaction" for f in found):
            return []
        location, unlocated = _began_at(ctx, exercised.idle_sites, "was checked out while it sat idle")
        return [
            Finding(
                "idle in transaction",
                exercised.operation.label,
                f"during the request a session of the app sat idle in transaction for {exercised.idle_ms:g} ms "
                "(pg_stat_activity, sampled every few ms): the route keeps its transaction open while it waits on "
                "something else; commit (or read what it needs) before waiting",
                location=location,
                unlocated=unlocated,
            )
        ]


def _began_at(ctx: CheckupContext, entries: list[dict[str, Any]], held: str) -> tuple[Location | None, str]:
    """Where the connections that ``held`` (the harness's checkout sites) were taken, when they all were taken at
    one line of the app's code; else no location, and why none can be named."""
    if not ctx.live.pool:
        return None, "no SQLAlchemy engine was found in the app, so no checkout was seen"
    if not entries:
        return None, f"no connection of the app's pool {held}: the idle session is not one the harness saw taken"
    if any(not entry.get("checked_out_at") or entry["checked_out_at"][0] is None for entry in entries):
        return None, "a connection was checked out by library code only, with no line of the app's on the stack"
    taken = {_key(entry) for entry in entries}
    if len(taken) > 1:
        return None, f"{len(entries)} connections {held}, taken at {len(taken)} lines: which one sat idle is unknown"
    entry = entries[0]
    where = locate(entry["checked_out_at"][0], ctx.app_dir, _role(ctx, entry))
    return where, ""


def _key(entry: dict[str, Any]) -> tuple[str, int]:
    first = entry["checked_out_at"][0]
    return str(first["file"]), int(first["line"])


def _role(ctx: CheckupContext, entry: dict[str, Any]) -> str:
    """What happened there, and the caller and the session's dependency when the harness saw them."""
    role = "the transaction left idle began here: this statement checked the connection out"
    caller = locate([*entry["checked_out_at"], None][1], ctx.app_dir)
    provider = locate(entry.get("session_from"), ctx.app_dir)
    if caller is not None:
        role += f", called from {caller}"
    if provider is not None:
        role += f"; the session came from {provider}, which returns it, and nothing closes it"
    return role
