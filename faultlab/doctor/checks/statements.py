"""SQL statements per request that grow with the rows (N+1), counted inside the server by the harness (the
catalogue's ``statements`` witness reads the same count)."""

from __future__ import annotations

from faultlab.doctor.contract import Check, CheckupContext
from faultlab.doctor.openapi import is_collection_read
from faultlab.doctor.report import Finding, NotRun

__all__ = ["StatementsPerRow"]


class StatementsPerRow(Check):
    """Each collection read once more, now that the creates made rows: statements that grew with the rows
    are one query per row (N+1), usually a relationship loaded lazily while the response is built."""

    name = "statements grow with rows (N+1)"

    def after_operations(self, ctx: CheckupContext) -> None:
        live, report = ctx.live, ctx.report
        if ctx.created is None:
            report.not_checked.append(
                NotRun(
                    self.name,
                    "no create answered with an id, so the doctor made no rows to compare with",
                    "give the collection a create (POST) whose answer carries the new row's id",
                )
            )
            return
        if live.statements() == 0:
            report.not_checked.append(
                NotRun(
                    self.name,
                    "the harness saw no SQL statement from the app: it counts those sent through SQLAlchemy",
                    "count a collection read's statements yourself, before and after rows exist (sqlite3: "
                    "Connection.set_trace_callback)",
                )
            )
            return
        reads = {o.label: o for o in ctx.plan if is_collection_read(o)}
        for checked in list(report.checked):
            if not checked.statements or checked.operation not in reads:
                continue
            before = live.statements()
            live.send(reads[checked.operation])
            live.settled()
            now = live.statements() - before
            checked.statements.append(now)
            if now >= checked.statements[0] + 2:
                report.findings.append(
                    Finding(
                        "statements grow with rows",
                        checked.operation,
                        f"{checked.statements[0]} SQL statement(s) per request before the doctor's creates, {now} "
                        "after them: one more per row (N+1), e.g. a relationship loaded lazily while the response "
                        "is built; load it with the query (selectinload)",
                    )
                )
