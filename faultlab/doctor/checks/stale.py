"""Stale pooled connections (PostgreSQL only): the app's sessions ended as a database restart or a failover
would, then a read sent again. The finding points to the app's ``create_engine`` call (where ``pool_pre_ping``
goes), as the harness saw it made (``faultlab.inside.engine_sites``)."""

from __future__ import annotations

import httpx

from faultlab.doctor.contract import NO_DATABASE_READ, NO_ENGINE, Check, CheckupContext
from faultlab.doctor.report import Checked, Finding, Location, NotRun
from faultlab.doctor.where import locate
from faultlab.names import POSTGRESQL_ONLY

__all__ = ["StaleConnections"]


class StaleConnections(Check):
    """A pool that hands out a dead connection without testing it (no ``pool_pre_ping``) fails that request."""

    name = "stale pooled connections"
    backends = POSTGRESQL_ONLY

    def after_operations(self, ctx: CheckupContext) -> None:
        live, report = ctx.live, ctx.report
        reads = [read for read, _ in ctx.database_reads()]
        if not live.pool:
            report.not_checked.append(NotRun(self.name, *NO_ENGINE))
            return
        if not reads:
            report.not_checked.append(
                NotRun(
                    self.name,
                    "no collection read answered 2xx having run a SQL statement: a read that never touches the "
                    "database would answer after a restart whatever the pool does",
                    NO_DATABASE_READ,
                )
            )
            return
        live.server.check_alive("before the stale-connection check")
        pooled = live.settled()
        if pooled is None or pooled.pool_open == 0:
            report.not_applicable.append(
                NotRun(
                    self.name,
                    "the pool keeps no connection open between requests (as NullPool does): none can go stale",
                )
            )
            return
        live.ctx.postgres.terminate_app_sessions()
        try:
            status: int | None = live.send(reads[0]).status_code
            answer = str(status)
        except httpx.TransportError as exc:  # the server's exception can cut the connection before the 500 is read
            status, answer = None, f"no answer ({exc})"
        live.reconnect()  # the server's exception may have closed the kept-alive connection under the client
        report.checked.append(Checked(f"{reads[0].label} after a database restart", [status or 0], []))
        if status is None or status >= 500:
            location, unlocated = _created_at(ctx)
            report.findings.append(
                Finding(
                    "stale pooled connection",
                    reads[0].label,
                    f"after PostgreSQL ended the app's {pooled.pool_open} pooled session(s) (as a restart or "
                    f"failover does), the next request got {answer}: the pool handed out a dead connection; "
                    "create_engine(..., pool_pre_ping=True) tests it first",
                    location=location,
                    unlocated=unlocated,
                )
            )


def _created_at(ctx: CheckupContext) -> tuple[Location | None, str]:
    """The app's line that created the engine (and its caller, when a helper of the app's made it); else why not."""
    created = ctx.live.sites().get("engine_created_at")
    if created is None:
        return None, (
            "the harness did not see the engine being created (SQLAlchemy keeps no record of where an engine was "
            "made; the harness notes it only for engines created while the app is imported or served)"
        )
    if not created:
        return None, "the engine was created by installed libraries alone: no line of the app's code was on the stack"
    role = "the engine is created here; its pool hands out connections untested: pool_pre_ping=True in this call"
    if (caller := locate([*created, None][1], ctx.app_dir)) is not None:
        role += f" (called from {caller})"
    return locate(created[0], ctx.app_dir, role), ""
