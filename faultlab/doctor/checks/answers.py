"""What the app answered: a 5xx on an operation built from its own schema, and a read by a just-created id
that finds nothing."""

from __future__ import annotations

from typing import Any

from faultlab.doctor.checks.implicit_io import is_implicit_io
from faultlab.doctor.contract import Check, CheckupContext, Exercised
from faultlab.doctor.report import Finding, Location
from faultlab.doctor.where import locate, server_error

__all__ = ["LostWrite", "ServerErrors"]


class ServerErrors(Check):
    """A 5xx on an operation the doctor built from the app's own schema is the app's error, with its exception
    (implicit IO, ``MissingGreenlet``, is a finding of its own: ``ImplicitIO``)."""

    name = "server errors"

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        checked, raised = exercised.checked, exercised.raised
        failed = [status for status in checked.statuses if status >= 500]
        if not failed or is_implicit_io(raised):
            return []
        evidence = f"{len(failed)} of {len(checked.statuses)} answered {failed[0]}"
        return [server_error(ctx, checked.operation, evidence, raised, exercised.raised_where)]


class LostWrite(Check):
    """A read by the id a create had just answered with, found nothing: the write was never committed (or
    went to another database than the one read). Only a read under the create's own path (``POST /todos``,
    ``GET /todos/{id}``): another resource's 404 says nothing about this write."""

    name = "created, then not found"

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        checked, created_by = exercised.checked, ctx.created_by
        if exercised.operation.method != "GET" or created_by is None:
            return []
        if not checked.statuses or any(status != 404 for status in checked.statuses):
            return []
        collection = created_by.partition(" ")[2].rstrip("/")
        if not checked.operation.partition(" ")[2].startswith(collection + "/"):
            return []
        evidence = (
            f"{created_by} answered with id {ctx.created!r}, then this read of it answered 404 every time: the "
            "create did not commit (or wrote where the reads do not look)"
        )
        location, unlocated, seen = _lost_at(ctx, created_by)
        return [Finding("created, then not found", checked.operation, evidence + seen, location, unlocated=unlocated)]


def _ended(ctx: CheckupContext, lost: dict[str, Any]) -> str:
    """Where the transaction that held the write ended, as the role and the evidence say it."""
    ended = locate(lost.get("ended_at"), ctx.app_dir)
    return f"at {ended}" if ended is not None else "when the session ended (no line of the app's code on the stack)"


def _lost_at(ctx: CheckupContext, created_by: str) -> tuple[Location | None, str, str]:
    """Where the create's write was lost: the app's line that flushed it, when the harness saw that write rolled
    back (``faultlab.inside.writes``); else the create's endpoint; else no line, and why. And, for the evidence,
    what the harness saw."""
    sites = ctx.live.sites()
    lost = [entry for entry in sites.get("uncommitted", []) if entry.get("request") == created_by]
    if lost and (flushed := lost[0].get("flushed_at")) is not None:
        how = _ended(ctx, lost[0])
        classes = ", ".join(lost[0].get("classes", [])) or "rows"
        role = f"{classes} flushed here, never committed: the transaction was rolled back {how}"
        seen = f"; the harness saw the write flushed and then rolled back {how}, with no commit between"
        return locate(flushed, ctx.app_dir, role), "", seen
    if lost:
        seen = f"its write was flushed by no line of the app's code and rolled back {_ended(ctx, lost[0])}"
    else:
        seen = "none of its writes was seen rolled back (it may write where the reads do not look)"
    endpoint = sites.get("endpoints", {}).get(created_by)
    if endpoint is not None:
        return locate(endpoint, ctx.app_dir, f"the create's endpoint: {seen}"), "", f"; {seen}"
    return None, f"{seen}, and no route of the app has an endpoint for {created_by}", f"; {seen}"
