"""SQL statements per request that grow with the rows (N+1), counted inside the server by the harness (the
catalogue's ``statements`` witness reads the same count)."""

from __future__ import annotations

import json
from collections import Counter

from faultlab.doctor.contract import Check, CheckupContext
from faultlab.doctor.openapi import is_collection_read
from faultlab.doctor.report import Finding, Location, NotRun
from faultlab.doctor.where import locate

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
            before, lazy_before = live.statements(), _lazy_loads(ctx)
            answer = live.send(reads[checked.operation])
            live.settled()
            now = live.statements() - before
            checked.statements.append(now)
            # A read that failed now says nothing of statements per row (an async app's lazy load is counted,
            # then refused, on asyncpg): ``ImplicitIO`` sends it again and finds why.
            if now >= checked.statements[0] + 2 and answer.status_code < 500:
                lazy = _lazy_loads(ctx) - lazy_before
                location, how = _where(ctx, lazy)
                report.findings.append(
                    Finding(
                        "statements grow with rows",
                        checked.operation,
                        f"{checked.statements[0]} SQL statement(s) per request before the doctor's creates, {now} "
                        f"after them: one more per row (N+1), {how}",
                        location=location,
                    )
                )


_Load = tuple[str, str, str]  # attribute, where it was read, where its rows were queried (JSON text)


def _lazy_loads(ctx: CheckupContext) -> Counter[_Load]:
    """The harness's lazy loads so far (``faultlab.inside.sites.LazyLoads``), counted by attribute and lines."""
    counted: Counter[_Load] = Counter()
    for load in ctx.live.sites().get("lazy_loads", []):
        key = (load["attribute"], json.dumps(load["read_at"]), json.dumps(load["query_at"]))
        counted[key] += int(load["count"])
    return counted


def _where(ctx: CheckupContext, lazy: Counter[_Load]) -> tuple[Location | None, str]:
    """The lazy load that ran most during the request: the query to give a loader option, and how to say it."""
    if not lazy:
        return None, (
            "e.g. a relationship loaded lazily while the response is built; load it with the query (selectinload)"
        )
    (attribute, read_json, query_json), count = lazy.most_common(1)[0]
    read, query = json.loads(read_json), json.loads(query_json)
    option = f".options(selectinload({attribute}))"
    read_at = locate(read, ctx.app_dir)
    by = f"read at {read_at}" if read_at else "read while the response was serialized (no line of the app's code)"
    how = f"{attribute} loaded lazily {count} time(s) in the request, {by}; load it with the query: {option}"
    if query is not None:
        return locate(query, ctx.app_dir, f"the query whose rows load {attribute} one by one: add {option}"), how
    return locate(read, ctx.app_dir, f"reads {attribute}, one query per row: add {option} to its query"), how
