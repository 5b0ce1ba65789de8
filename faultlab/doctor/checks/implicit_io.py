"""Implicit IO in an async app: a 5xx whose exception is SQLAlchemy's ``MissingGreenlet``. An ``AsyncSession``
may reach the database only inside an ``await``; a lazy relationship or an attribute expired by ``commit()``
read in plain code (most often while FastAPI builds the response) is IO it refuses. A collection's lazy
relationships load only when it has rows, so each collection read that answered 2xx is sent once more, now
that the doctor's creates made rows: a read that fails only then is found too.

Where: the harness notes what the ORM was loading in the request that raised (``faultlab.inside.loading``): a
lazy load points to the query whose rows loaded it (where the loader option goes), a reload of columns a
commit expired to that commit; else the app's line nearest the exception, else no line, and why."""

from __future__ import annotations

from typing import Any

from faultlab.doctor.contract import ANSWER_FINDINGS, Check, CheckupContext, Exercised
from faultlab.doctor.openapi import Operation, is_collection_read
from faultlab.doctor.report import Finding, Location
from faultlab.doctor.where import locate

__all__ = ["MARK", "ImplicitIO", "is_implicit_io"]

MARK = "MissingGreenlet"

WHY = (
    "the async session was asked to load from the database outside an `await` (MissingGreenlet: a lazy "
    "relationship, or an attribute that commit() expired, read in plain code, here most likely while the "
    "response was built), and SQLAlchemy refused"
)
FIX = (
    "load what the response reads in the awaited query (.options(selectinload(...))), keep loaded values after "
    "a commit (async_sessionmaker(..., expire_on_commit=False)), or load it explicitly (await "
    'session.refresh(obj, [...]), AsyncAttrs); lazy="raise" makes a miss loud'
)


def is_implicit_io(raised: list[str]) -> bool:
    """Whether the server's exceptions include ``MissingGreenlet`` (itself, or inside a ResponseValidationError)."""
    return any(MARK in exception for exception in raised)


class ImplicitIO(Check):
    """A 5xx caused by ``MissingGreenlet``: a finding of its own (``ServerErrors`` leaves it to this check),
    with what happened and what to do, at the line the harness saw cause it."""

    name = "implicit IO (async)"

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        failed = [status for status in exercised.checked.statuses if status >= 500]
        if not failed or not is_implicit_io(exercised.raised):
            return []
        evidence = f"{len(failed)} of {len(exercised.checked.statuses)} answered {failed[0]}"
        first = next(i for i, exception in enumerate(exercised.raised) if MARK in exception)
        loading = exercised.raised_loading[first] if first < len(exercised.raised_loading) else None
        where = exercised.raised_where[first] if first < len(exercised.raised_where) else None
        return [_finding(ctx, exercised.operation.label, evidence, exercised.raised[first], loading, where)]

    def after_operations(self, ctx: CheckupContext) -> None:
        """Each collection read that answered 2xx and was found no error on, once more, now with rows."""
        if ctx.created is None:
            return  # no rows made: the reads would answer as before
        found_on = {o for finding in ctx.report.findings if finding.kind in ANSWER_FINDINGS for o in finding.operations}
        fine = {c.operation for c in ctx.report.checked if c.statuses and all(200 <= s < 300 for s in c.statuses)}
        for operation in ctx.plan:
            if is_collection_read(operation) and operation.label in fine and operation.label not in found_on:
                self._again(ctx, operation)

    def _again(self, ctx: CheckupContext, operation: Operation) -> None:
        live = ctx.live
        live.errors.read_new()
        answer = live.send(operation)
        live.settled()
        records = live.errors.read_new()
        if answer.status_code < 500:
            return
        evidence = f"answered 2xx before the doctor's creates, {answer.status_code} once they made rows"
        if record := next((r for r in records if MARK in str(r)), None):
            finding = _finding(ctx, operation.label, evidence, str(record), record.loading, record.where)
            ctx.report.findings.append(finding)
        else:
            what = f": {str(records[0])[:300]}" if records else " (no exception reached the harness)"
            ctx.report.findings.append(Finding("server error", operation.label, evidence + what))


def _finding(
    ctx: CheckupContext, operation: str, evidence: str, raised: str, loading: dict[str, Any] | None, where: Any
) -> Finding:
    exception = raised.split("\n", 1)[0]  # not its SQL
    location, unlocated, loaded = _cause(ctx, loading, where)
    return Finding(
        "implicit IO",
        operation,
        f"{evidence}: {exception[:300]}; {WHY}{loaded}. Fix: {FIX}",
        location=location,
        unlocated=unlocated,
    )


def _cause(ctx: CheckupContext, loading: dict[str, Any] | None, where: Any) -> tuple[Location | None, str, str]:
    """The line to fix (or why none is known) and, for the evidence, what was being loaded."""
    kind = (loading or {}).get("kind")
    if loading is not None and kind == "lazy load":
        attribute = loading["attribute"]
        option = f".options(selectinload({attribute}))"
        loaded = f" ({attribute} was loaded lazily)"
        if loading.get("query_at"):
            role = f"the query whose rows load {attribute} lazily: add {option}"
            return locate(loading["query_at"], ctx.app_dir, role), "", loaded
        if loading.get("read_at"):
            return locate(loading["read_at"], ctx.app_dir, f"reads {attribute} outside an await"), "", loaded
        return None, f"{attribute} was loaded lazily from rows no query of the app's code loaded in the request", loaded
    if loading is not None and kind in ("expired columns", "column load"):
        owner = loading["class"]
        loaded = f" ({owner}'s columns were reloaded: a commit had expired them)" if kind == "expired columns" else ""
        if loading.get("commit_at"):
            role = f"this commit expired {owner} (expire_on_commit), which was then read outside an await"
            return locate(loading["commit_at"], ctx.app_dir, role), "", loaded
        if loading.get("read_at"):
            return locate(loading["read_at"], ctx.app_dir, f"reads {owner}'s columns outside an await"), "", loaded
        if kind == "expired columns":
            why = f"no commit of the request's session was seen to expire {owner} (a rollback or expire() can)"
            return None, why, loaded
        return None, f"{owner}'s columns (deferred, or some expired) were loaded by no line of the app's code", loaded
    if where is not None:
        return locate(where, ctx.app_dir, "the app's line nearest the MissingGreenlet"), "", ""
    why = (
        "the exception passed through no line of the app's code (it was raised while the response was built) "
        "and the request loaded nothing the harness noted"
    )
    return None, why, ""
