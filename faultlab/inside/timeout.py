"""The doctor's "no statement timeout" check, inside the server: ``GET /_lab/statement_timeout`` answers the
``statement_timeout`` the app's connections really run with, read by ``SHOW statement_timeout`` on a connection of
the app's own pool (its ``connect_args``, its role's and database's settings and the server's default all count,
and only PostgreSQL knows which one won).

Reading it changes nothing the app sees: the connection is checked out, asked one ``SHOW`` (no ``SET``), and
checked in again, its transaction rolled back as every check-in does. An ``AsyncEngine``'s pool is reached in a
greenlet of SQLAlchemy's (``greenlet_spawn``), as its own ``AsyncConnection`` does, on the server's event loop;
a sync engine's in a worker thread, so the loop never waits on the database. A worker thread cannot be
cancelled: a read given up on after ``READ_DEADLINE_S`` would still take its connection once the pool has one.
The check reads first, before any operation, on a whole pool, where a connection is always at hand.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from faultlab.inside.extensions import Inside

__all__ = ["install"]

READ_DEADLINE_S = 4.0  # within the doctor's probe's 5 s: a pool with no connection to spare is said, not waited on


def install(inside: Inside) -> None:
    engine = inside.engine

    async def statement_timeout(request: Request) -> JSONResponse:
        if engine is None:
            return JSONResponse({"engine": False})
        answer: dict[str, Any] = {"engine": True, "backend": engine.dialect.name, "driver": engine.dialect.driver}
        if engine.dialect.name != "postgresql":
            return JSONResponse(answer)
        try:
            answer["statement_timeout"] = await asyncio.wait_for(_read(engine), READ_DEADLINE_S)
        except TimeoutError:
            answer["error"] = f"no connection of the app's pool answered within {READ_DEADLINE_S:g} s"
        except Exception as exc:  # the app's database refused: the doctor says so, the app is not harmed
            answer["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return JSONResponse(answer)

    inside.route("statement_timeout", statement_timeout, methods=("GET",))


async def _read(engine: Engine) -> str:
    if engine.dialect.is_async:  # the sync face of an AsyncEngine: its IO must run in one of SQLAlchemy's greenlets
        from sqlalchemy.util import greenlet_spawn

        value: str = await greenlet_spawn(_show, engine)
        return value
    return await run_in_threadpool(_show, engine)


def _show(engine: Engine) -> str:
    with engine.connect() as connection:  # checked in again (rolled back) as it closes
        return str(connection.exec_driver_sql("SHOW statement_timeout").scalar())
