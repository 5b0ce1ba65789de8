"""The observation harness: runs inside the server, around the target app, and changes nothing it serves.

uvicorn serves ``lab.harness:create_app`` (``--factory``); ``FAULTLAB_TARGET`` names the variant's app
(``module:attribute``). Requests under ``/_lab/`` go to the harness's own probe routes; everything else goes
to the target untouched. Exceptions that escape the target are recorded (type and first line of the
message) and re-raised, so the server behaves exactly as it would without the harness.
"""

from __future__ import annotations

import gc
import importlib
import os
import re
import threading
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from lab.wire import PROBE_PREFIX, TARGET_ENV

__all__ = ["LabHarness", "create_app"]

_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)$")


def describe_exception(exc: BaseException) -> list[dict[str, str]]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in describe_exception(inner)]
    kind = type(exc)
    lines = str(exc).strip().splitlines()
    # SQLAlchemy appends the SQL on later lines and a link in parentheses; the first line says what happened.
    message = _BACKGROUND.sub("", lines[0]) if lines else ""
    return [{"type": f"{kind.__module__}.{kind.__qualname__}", "message": message}]


def pool_counts(engine: Engine) -> dict[str, Any]:
    pool = engine.pool
    counts: dict[str, Any] = {"pool": type(pool).__name__}
    if isinstance(pool, QueuePool):  # NullPool and StaticPool keep no such counts
        counts.update(
            size=pool.size(),
            checked_out=pool.checkedout(),
            checked_in=pool.checkedin(),
            overflow=pool.overflow(),
        )
    return counts


class LabHarness:
    def __init__(self, target: ASGIApp, engine: Engine) -> None:
        self.target = target
        self.engine = engine
        self.errors: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self.probes = Starlette(
            routes=[
                Route(f"{PROBE_PREFIX}ready", self._ready),
                Route(f"{PROBE_PREFIX}pool", self._pool),
                Route(f"{PROBE_PREFIX}errors", self._errors),
                Route(f"{PROBE_PREFIX}gc", self._gc, methods=["POST"]),
                Route(f"{PROBE_PREFIX}gc/{{switch:str}}", self._gc_switch, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROBE_PREFIX):
            await self.probes(scope, receive, send)
            return
        try:
            await self.target(scope, receive, send)
        except Exception as exc:
            with self._lock:
                self.errors.extend(describe_exception(exc))
            raise

    # Probe routes are async and touch no session, so they answer even when every worker thread is
    # blocked waiting for a pooled connection.
    async def _ready(self, request: Request) -> JSONResponse:
        return JSONResponse({"pid": os.getpid()})

    async def _pool(self, request: Request) -> JSONResponse:
        return JSONResponse(pool_counts(self.engine))

    async def _errors(self, request: Request) -> JSONResponse:
        since = int(request.query_params.get("since", "0"))
        with self._lock:
            return JSONResponse({"total": len(self.errors), "errors": self.errors[since:]})

    async def _gc(self, request: Request) -> JSONResponse:
        """An action, not an observation: it changes what happens next, and the report says so."""
        before = pool_counts(self.engine)
        collected = gc.collect()
        return JSONResponse({"collected": collected, "before": before, "after": pool_counts(self.engine)})

    async def _gc_switch(self, request: Request) -> JSONResponse:
        """An action: switching the collector off makes a leak deterministic (and shows it is the collector
        that hides it in real life); the report lists it as an action."""
        switch = request.path_params["switch"]
        if switch not in ("disable", "enable"):
            return JSONResponse({"detail": "use /gc/disable or /gc/enable"}, status_code=404)
        if switch == "disable":
            gc.disable()
        else:
            gc.enable()
        return JSONResponse({"enabled": gc.isenabled()})


def load_target(spec: str) -> tuple[ASGIApp, Engine]:
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attribute or "app")
    # A variant that builds its own engine exposes it as `engine`; otherwise it uses the app's.
    engine = getattr(module, "engine", None)
    if engine is None:
        from app import database

        engine = database.engine
    return target, engine


def create_app() -> LabHarness:
    spec = os.environ.get(TARGET_ENV)
    if not spec:
        raise RuntimeError(f"{TARGET_ENV} is not set; it names the app to serve, e.g. faults.missing_yield:app")
    target, engine = load_target(spec)
    return LabHarness(target, engine)
