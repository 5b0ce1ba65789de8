"""What the app answered: a 5xx on an operation built from its own schema, and a read by a just-created id
that finds nothing."""

from __future__ import annotations

from faultlab.doctor.checks.implicit_io import is_implicit_io
from faultlab.doctor.contract import Check, CheckupContext, Exercised
from faultlab.doctor.report import Finding
from faultlab.doctor.where import locate

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
        what = f": {raised[0][:300]}" if raised else " (no exception reached the harness)"
        evidence = f"{len(failed)} of {len(checked.statuses)} answered {failed[0]}{what}"
        seen = next((w for w in exercised.raised_where if w is not None), None)
        location = locate(seen, ctx.app_dir, "the app's line nearest the raise")
        if raised and location is None:
            evidence += " (no frame of the app's code in its traceback: a library raised it)"
        return [Finding("server error", checked.operation, evidence, location=location)]


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
        return [
            Finding(
                "created, then not found",
                checked.operation,
                f"{created_by} answered with id {ctx.created!r}, then this read of it answered 404 every time: the "
                "create did not commit (or wrote where the reads do not look)",
            )
        ]
