"""The pool's budget: a collection read sent 4, 16, then 48 at once, the collector back on as in production."""

from __future__ import annotations

from faultlab.doctor.checks.pool import leak_cause
from faultlab.doctor.contract import NO_DATABASE_READ, NO_READ, Check, CheckupContext
from faultlab.doctor.report import Checked, Finding, NotRun
from faultlab.server import client

__all__ = ["PoolBudget"]

BUDGET_STEPS = (4, 16, 48)  # concurrent requests tried, each once; bounded, loopback only
BUDGET_TIMEOUT_S = 5.0


class PoolBudget(Check):
    """The concurrency at which requests start to fail, and how. A pool smaller than the server's concurrency
    makes requests wait for a connection (``pool_timeout``) and then fail; a leak makes that happen much
    sooner."""

    name = "pool budget"

    def end(self, ctx: CheckupContext) -> None:
        report = ctx.report
        if not ctx.healthy_reads():
            report.not_checked.append(
                NotRun(self.name, "no collection read that answers 2xx one at a time, to send at once", NO_READ)
            )
            return
        if not (reads := ctx.database_reads()):
            fine = ", ".join(o.label for o in ctx.healthy_reads())
            report.not_checked.append(
                NotRun(
                    self.name,
                    f"no collection read that answers 2xx ran a SQL statement ({fine}: none; the harness counts "
                    "statements sent through SQLAlchemy): sent at once, a read that never touches the database says "
                    "nothing of the pool",
                    NO_DATABASE_READ,
                )
            )
            return
        operation, statements = reads[0]
        report.pool_route = f"{operation.label} ({statements} SQL statement(s) per request)"
        for concurrency in BUDGET_STEPS:
            outcomes = client.send_many(
                client.Request(operation.method, ctx.live.server.base_url + operation.path, headers=ctx.live.headers),
                repeat=concurrency,
                concurrency=concurrency,
                timeout_s=BUDGET_TIMEOUT_S,
            )
            failed = [o for o in outcomes if not o.ok]
            report.checked.append(
                Checked(f"{operation.label}, {concurrency} at once", [o.status or 0 for o in outcomes], [])
            )
            if failed:
                how = sorted({str(o.status) if o.status else f"no answer ({o.failure})" for o in failed})
                report.findings.append(
                    Finding(
                        "pool budget exceeded",
                        operation.label,
                        f"{len(failed)} of {concurrency} concurrent requests failed ({', '.join(how)}; a timeout "
                        f"is no answer within {BUDGET_TIMEOUT_S:g} s), while {BUDGET_STEPS[0]} at once were fine"
                        if concurrency != BUDGET_STEPS[0]
                        else f"{len(failed)} of only {concurrency} concurrent requests failed ({', '.join(how)})",
                        location=leak_cause(report.findings, operation.label),
                    )
                )
                return
