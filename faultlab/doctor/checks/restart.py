"""Database restart (PostgreSQL, on a server of the doctor's own): the server restarted between two requests, as an
upgrade, a failover or a crash does, then a read sent a few times: does the next request fail (stale pooled
connections: no ``pool_pre_ping``), and does the app recover?

Only a server the doctor started for this checkup is restarted (``--db own-cluster``,
``faultlab.backends.cluster``): a server the user shares, with its other databases and clients, is never restarted,
nor are sessions on it ended. There, and on SQLite, this check is not applicable and says how to include it.
"""

from __future__ import annotations

import httpx

from faultlab.backends.base import PostgresBackend
from faultlab.backends.cluster import OwnCluster
from faultlab.doctor.checks.engine_site import engine_created_at
from faultlab.doctor.contract import NO_DATABASE_READ, NO_ENGINE, Check, CheckupContext
from faultlab.doctor.openapi import Operation
from faultlab.doctor.report import Checked, Finding, NotRun
from faultlab.errors import BackendError

__all__ = ["OWN_CLUSTER_REMEDY", "DatabaseRestart"]

AFTER = 3  # reads after the restart: the first meets the pool as the restart left it, the others how it recovered
OWN_CLUSTER_REMEDY = "run with --db own-cluster to include it: a PostgreSQL server of the doctor's own"


class DatabaseRestart(Check):
    """A pool that hands out a connection the restart closed, without testing it, fails that request."""

    name = "database restart"
    cluster: OwnCluster | None = None

    def start(self, ctx: CheckupContext) -> None:
        backend = ctx.live.backend
        self.cluster = backend.cluster if isinstance(backend, PostgresBackend) else None
        if self.cluster is None:
            ctx.report.not_applicable.append(
                NotRun(
                    self.name,
                    "it restarts the database server, which the doctor does only to a PostgreSQL server of its own, "
                    "never to one you share",
                    OWN_CLUSTER_REMEDY,
                )
            )

    def after_operations(self, ctx: CheckupContext) -> None:
        live, report = ctx.live, ctx.report
        if self.cluster is None:
            return
        reads = [read for read, _ in ctx.database_reads()]
        if not live.pool:
            report.not_checked.append(NotRun(self.name, *NO_ENGINE))
            return
        if not reads:
            why = "no collection read answered 2xx having run a SQL statement: a read that never touches the database "
            report.not_checked.append(NotRun(self.name, why + "would answer after a restart", NO_DATABASE_READ))
            return
        live.server.check_alive("before the database restart")
        pooled = live.settled()
        if pooled is None or pooled.pool_open == 0:
            report.not_applicable.append(
                NotRun(
                    self.name, "the pool keeps no connection open between requests (as NullPool does): none is stale"
                )
            )
            return
        live.errors.read_new()  # what came before: not the restart's
        try:
            self.cluster.restart()
        except BackendError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            report.not_checked.append(
                NotRun(
                    self.name,
                    f"the doctor's own PostgreSQL server did not restart: {first}",
                    "run the doctor again; if it keeps failing, run it with --db postgresql instead (this check "
                    "then does not apply) and report the PostgreSQL version (pg_ctl --version)",
                )
            )
            return
        answers = [_send(ctx, reads[0]) for _ in range(AFTER)]
        statuses = [status or 0 for status, _ in answers]
        report.checked.append(Checked(f"{reads[0].label} after a database restart", statuses, []))
        failed = [status is None or status >= 500 for status, _ in answers]
        if not failed[0]:
            return
        raised = [str(record) for record in live.errors.read_new()]
        said = f" ({raised[0]})" if raised else ""
        recovered = failed.index(False) + 1 if False in failed else None
        after = (
            f"the app recovered: request {recovered} of {AFTER} answered {statuses[recovered - 1]}"
            if recovered
            else f"it did not recover: none of {AFTER} requests in a row answered"
        )
        location, unlocated = engine_created_at(
            ctx, "its pool hands out connections untested: pool_pre_ping=True in this call"
        )
        report.findings.append(
            Finding(
                "stale pooled connection",
                reads[0].label,
                f"after the database server restarted (pg_ctl restart, with {pooled.pool_open} connection(s) in the "
                f"app's pool), the next request got {answers[0][1]}{said}: the pool handed out a connection the "
                f"restart had closed; {after}. create_engine(..., pool_pre_ping=True) tests each connection as it "
                "is checked out",
                location=location,
                unlocated=unlocated,
            )
        )


def _send(ctx: CheckupContext, read: Operation) -> tuple[int | None, str]:
    """One read, its status and how it answered; a fresh client after it (a 500 may close the kept-alive one)."""
    try:
        status: int | None = ctx.live.send(read).status_code
        answer = str(status)
    except httpx.TransportError as exc:  # the server's exception can cut the connection before the 500 is read
        status, answer = None, f"no answer ({exc})"
    ctx.live.reconnect()
    return status, answer
