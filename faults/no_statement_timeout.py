"""A slow query with no time limit holds its connection for as long as it runs.

A report over a big table, a query that lost its index, one queued behind a lock: PostgreSQL runs a statement
for as long as it takes unless it is told otherwise, and the request's session keeps its connection checked
out of the pool the whole time. Here the connections say ``statement_timeout=0`` (no limit, PostgreSQL's
default), where the correct app sets 30 s (``DB_STATEMENT_TIMEOUT_MS``). The caller giving up (a client
timeout, a load balancer's 30 s) changes nothing: the server still waits for the query and PostgreSQL still
runs it. A few such requests hold the whole pool, and every other route waits for a connection. The fixed app
(``fixed_app``) sets a ``statement_timeout`` just above its slowest legitimate query: PostgreSQL cancels a
statement that runs longer, the request fails at once (``QueryCanceled``), and its connection goes back to
the pool.
"""

from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from app.database import DbSession, make_engine
from app.main import create_app

REPORT_S = 6  # how long the report's query runs (pg_sleep: a slow scan, exactly as long every time)
STATEMENT_TIMEOUT_MS = 1000  # choose it above your slowest legitimate query


def slow_report(db: DbSession) -> dict[str, int]:
    db.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": REPORT_S})  # the connection is held until it ends
    return {"seconds": REPORT_S}


def with_report(**options: Any) -> FastAPI:
    """The correct app plus one slow route: the report is not part of the todo API."""
    api = create_app(**options)
    api.add_api_route("/reports/slow", slow_report, methods=["GET"])
    return api


# BUG: statement_timeout=0, no limit (PostgreSQL's default; the correct app's 30 s is replaced): none is stopped
app = with_report(engine=make_engine(connect_args={"options": "-c statement_timeout=0"}))

fixed_app = with_report(
    # the fix: PostgreSQL cancels any statement of these connections that runs longer than the timeout
    engine=make_engine(connect_args={"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"})
)
