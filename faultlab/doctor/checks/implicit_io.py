"""Implicit IO in an async app: a 5xx whose exception is SQLAlchemy's ``MissingGreenlet``. An ``AsyncSession``
may reach the database only inside an ``await``; a lazy relationship or an attribute expired by ``commit()``
read in plain code (most often while FastAPI builds the response) is IO it refuses. A collection's lazy
relationships load only when it has rows, so each collection read that answered 2xx is sent once more, now
that the doctor's creates made rows: a read that fails only then is found too."""

from __future__ import annotations

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
    with what happened and what to do, at the query whose rows loaded lazily when the harness saw it."""

    name = "implicit IO (async)"

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        failed = [status for status in exercised.checked.statuses if status >= 500]
        if not failed or not is_implicit_io(exercised.raised):
            return []
        evidence = f"{len(failed)} of {len(exercised.checked.statuses)} answered {failed[0]}"
        return [_finding(ctx, exercised.operation.label, evidence, exercised.raised)]

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
        raised = [str(record) for record in live.errors.read_new()]
        if answer.status_code < 500:
            return
        evidence = f"answered 2xx before the doctor's creates, {answer.status_code} once they made rows"
        if is_implicit_io(raised):
            ctx.report.findings.append(_finding(ctx, operation.label, evidence, raised))
        else:
            what = f": {raised[0][:300]}" if raised else " (no exception reached the harness)"
            ctx.report.findings.append(Finding("server error", operation.label, evidence + what))


def _finding(ctx: CheckupContext, operation: str, evidence: str, raised: list[str]) -> Finding:
    exception = next(exception for exception in raised if MARK in exception).split("\n", 1)[0]  # not its SQL
    location, loaded = _lazy_site(ctx)
    return Finding(
        "implicit IO",
        operation,
        f"{evidence}: {exception[:300]}; {WHY}{loaded}. Fix: {FIX}",
        location=location,
    )


def _lazy_site(ctx: CheckupContext) -> tuple[Location | None, str]:
    """The lazy load the harness saw most (its ``do_orm_execute`` notes it before the IO is refused): the
    query whose rows loaded it, where the loader option goes."""
    loads = ctx.live.sites().get("lazy_loads", [])
    if not loads:
        return None, " (no lazy relationship load was seen: most likely an attribute that commit() had expired)"
    load = max(loads, key=lambda seen: int(seen["count"]))
    attribute = load["attribute"]
    option = f".options(selectinload({attribute}))"
    where = load["query_at"] or load["read_at"]
    role = f"the query whose rows load {attribute} lazily: add {option}"
    return locate(where, ctx.app_dir, role), f" ({attribute} was loaded lazily)"
