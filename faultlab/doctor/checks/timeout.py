"""No statement timeout (PostgreSQL only): the ``statement_timeout`` the app's connections run with, as PostgreSQL
itself answers on a connection of the app's own pool (``faultlab.inside.timeout``). At 0, a slow statement holds its
pooled connection for as long as it runs, whoever still waits for its answer (the catalogue's
no-statement-timeout: two slow reports starve a pool of two)."""

from __future__ import annotations

from typing import Any

from faultlab.doctor.checks.engine_site import engine_created_at
from faultlab.doctor.contract import NO_ENGINE, Check, CheckupContext
from faultlab.doctor.report import Checked, Finding, NotRun
from faultlab.errors import ServerError
from faultlab.names import POSTGRESQL_ONLY

__all__ = ["FIXES", "StatementTimeout"]

ENGINE = "(the engine)"  # the finding is the engine's, not any operation's
FIXES = {  # by driver: how its engine is given a timeout (30 s here: above the slowest legitimate query)
    "asyncpg": 'create_async_engine(..., connect_args={"server_settings": {"statement_timeout": "30000"}})',
    "psycopg": 'create_engine(..., connect_args={"options": "-c statement_timeout=30000"})',
}


class StatementTimeout(Check):
    """Read once, before any operation: the pool is whole then, and a checkup's own statements are not yet counted."""

    name = "statement timeout"
    backends = POSTGRESQL_ONLY
    inside = "faultlab.inside.timeout:install"

    def start(self, ctx: CheckupContext) -> None:
        live, report = ctx.live, ctx.report
        if not live.pool:
            report.not_checked.append(NotRun(self.name, *NO_ENGINE))
            return
        try:
            answer = live.ctx.harness("statement_timeout", method="GET")
        except ServerError as exc:
            report.not_checked.append(NotRun(self.name, str(exc), "run the doctor again"))
            return
        if "statement_timeout" not in answer:
            why = answer.get("error") or "the harness could not read it"
            report.not_checked.append(NotRun(self.name, why, "check that the app's database answers"))
            return
        value = str(answer["statement_timeout"])
        report.checked.append(Checked(f"SHOW statement_timeout on a pooled connection: {value}", [], []))
        if value != "0":
            return
        location, unlocated = engine_created_at(ctx, "give it a statement timeout in this call's connect_args")
        report.findings.append(
            Finding("no statement timeout", ENGINE, _evidence(answer), location=location, unlocated=unlocated)
        )


def _evidence(answer: dict[str, Any]) -> str:
    fix = FIXES.get(str(answer.get("driver")), FIXES["psycopg"])
    return (
        "the app's connections run with statement_timeout = 0 (SHOW statement_timeout on a connection of its own "
        "pool): PostgreSQL lets a statement run for as long as it takes, and its request holds the pooled "
        "connection all that time, also after the caller gave up, so a few slow queries starve every other route; "
        f"give the engine a timeout above your slowest legitimate query: {fix} (behind PgBouncer, which refuses "
        "such start-up parameters, or with another driver, set it on the server for the app's role instead: "
        "ALTER ROLE app_role SET statement_timeout = '30s')"
    )
