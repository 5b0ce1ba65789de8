"""The observation harness: runs inside the server, around the target app, and changes nothing it serves.

uvicorn serves ``faultlab.inside.harness:create_app`` (``--factory``); ``FAULTLAB_TARGET`` names the variant's ASGI app
(``module:attribute``) and ``FAULTLAB_ENGINE`` optionally its engine. The harness observes without
talking: pool events, request counts and the SQL statements the app runs go into shared-memory files
(``faultlab.inside.stats``, ``faultlab.inside.statements``) and exceptions that
escape the app into a JSON-lines file, both read by the runner from outside. Exceptions are re-raised
unchanged, so the server behaves exactly as it would without the harness. The only routes it adds,
under ``/_lab/``, are the readiness check and those of the plugins the run uses (``faultlab.inside.extensions``:
the garbage-collector *actions*, say).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from faultlab.inside import extensions, wire
from faultlab.inside.chain import describe_chain
from faultlab.inside.engine_sites import EngineSites
from faultlab.inside.extensions import Inside
from faultlab.inside.identity import describe, find_engine, import_target, load, load_engine, module_sessions
from faultlab.inside.listeners import PoolWatch, SqlWatch
from faultlab.inside.loading import RequestLoads
from faultlab.inside.loop_sampler import LoopSampler
from faultlab.inside.providers import endpoints
from faultlab.inside.sites import describe as describe_site
from faultlab.inside.statements import StatementWriter
from faultlab.inside.stats import StatsWriter
from faultlab.inside.writes import UncommittedWrites

__all__ = ["LabHarness", "create_app", "describe_chain", "find_engine", "load"]

MAX_WRAPPERS = 8


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class LabHarness:
    def __init__(
        self,
        target: ASGIApp,
        engine: Engine | None,
        *,
        stats_dir: Path,
        errors_dir: Path,
        identity: dict[str, str] | None = None,
        inside: str = "",
        engine_sites: EngineSites | None = None,
    ) -> None:
        self.target = target
        self.engine = engine
        self.engine_sites = engine_sites  # where each engine was created, when installed before the app's import
        self.identity = identity or {}  # where the app came from and its engine's URL (``inside.identity``)
        self.stats = StatsWriter(stats_dir)
        sites = os.environ.get(wire.SITES_ENV) == "1"
        self.loop_sampler = LoopSampler() if sites else None  # its thread starts when the doctor arms it
        self.pool_watch = PoolWatch(engine, self.stats, sites=sites) if engine is not None else None
        self.sql_watch = SqlWatch(StatementWriter(stats_dir), sites=sites)
        self.loads = RequestLoads() if sites else None  # what each request was loading, for its exception
        self.writes = UncommittedWrites() if sites else None  # writes flushed and never committed, and where
        for notes in (self.loads, self.writes):
            if notes is not None:
                notes.install()
        errors_dir.mkdir(parents=True, exist_ok=True)
        self.errors_path = errors_dir / f"{os.getpid()}.jsonl"
        self._errors_lock = threading.Lock()
        plugins = Inside(engine, stats_dir)
        extensions.install(inside, plugins)
        own = [
            Route(f"{wire.PROBE_PREFIX}ready", self._ready),
            Route(f"{wire.PROBE_PREFIX}app", self._app),
            Route(f"{wire.PROBE_PREFIX}sites", self._sites),
            Route(f"{wire.PROBE_PREFIX}loop/arm", self._loop_arm, methods=["POST"]),
            Route(f"{wire.PROBE_PREFIX}loop", self._loop_read),
        ]
        self.probes = Starlette(routes=[*own, *plugins.routes])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.target(scope, receive, send)
            return
        if scope["path"].startswith(wire.PROBE_PREFIX):
            await self.probes(scope, receive, send)
            return
        self.stats.add("requests_started")
        notes = self.loads.begin() if self.loads is not None else None
        writes = self.writes.begin(scope) if self.writes is not None else None
        try:
            await self.target(scope, receive, send)
        except Exception as exc:
            self._record(exc, scope)
            raise
        finally:
            # After the target returns, FastAPI has run the dependencies' clean-up too.
            self.stats.add("requests_finished")
            if self.loads is not None and notes is not None:
                self.loads.end(notes)
            if self.writes is not None and writes is not None:
                self.writes.end(writes)

    def _record(self, exc: BaseException, scope: Scope) -> None:
        record = {
            "step": _header(scope, wire.STEP_HEADER),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "time": time.time(),
            "chain": (chain := describe_chain(exc)),
            # The app's line nearest the first exception of the chain whose traceback passes through it.
            "where": next((link["where"] for link in chain if "where" in link), None),
            # What the ORM was loading when it raised (``faultlab.inside.loading``): a refused lazy load, say.
            "loading": self.loads.last() if self.loads is not None else None,
        }
        self.stats.add("exceptions")
        try:
            with self._errors_lock, open(self.errors_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
        except OSError as problem:  # the app's exception must still propagate as itself, not as this one
            print(f"faultlab harness: could not record an exception: {problem}", file=sys.stderr)

    async def _ready(self, request: Request) -> JSONResponse:
        return JSONResponse({"pid": os.getpid(), "engine": self.pool_watch is not None, **self.identity})

    async def _loop_arm(self, request: Request) -> JSONResponse:
        """Start watching where the event loop is held (``faultlab.inside.loop_sampler``): only with sites on."""
        if self.loop_sampler is None:
            return JSONResponse({"recording": False})
        self.loop_sampler.arm()
        return JSONResponse({"recording": True})

    async def _loop_read(self, request: Request) -> JSONResponse:
        """Where the loop was held since it was armed, most often first; the window closes."""
        if self.loop_sampler is None:
            return JSONResponse({"recording": False, "samples": 0, "held_at": []})
        return JSONResponse({"recording": True, **self.loop_sampler.read()})

    async def _sites(self, request: Request) -> JSONResponse:
        """Where the connections still checked out were taken, and the lazy loads so far with their lines
        (``faultlab.inside.sites``): read on demand, after an operation, so that reading changes nothing seen."""
        sites = self.pool_watch.sites if self.pool_watch is not None else None
        lazy = self.sql_watch.lazy_loads
        checked_out = sites.snapshot(self.target) if sites is not None else []
        if request.query_params.get("only") == "checked_out":
            # Asked while a request runs (the doctor's idle watch): only the cheap part, so that the event loop
            # this route runs on is not held by source reads the probes beside it would count as a block.
            return JSONResponse({"recording": lazy is not None, "checked_out": checked_out})
        created = self.engine_sites.created_at(self.engine) if self.engine_sites and self.engine else None
        return JSONResponse(
            {
                "recording": lazy is not None,
                "checked_out": checked_out,
                "lazy_loads": lazy.snapshot() if lazy is not None else [],
                # The app's frames where its engine was created; null: its creation was not seen.
                "engine_created_at": [describe_site(site) for site in created] if created is not None else None,
                # Writes flushed and never committed (``inside.writes``), each route's endpoint, sessions held by
                # the app's module globals (``inside.identity.module_sessions``).
                "uncommitted": self.writes.snapshot() if self.writes is not None else [],
                "endpoints": {label: describe_site(site) for label, site in endpoints(self.target).items()},
                "module_sessions": module_sessions() if lazy is not None else [],
            }
        )

    async def _app(self, request: Request) -> JSONResponse:
        """What the app says of itself that the doctor cannot see from outside: where it serves its OpenAPI
        document (``openapi_url``, e.g. ``/api/v1/openapi.json``; null when it serves none or is no FastAPI)."""
        app: Any = self.target
        found = False
        for _ in range(MAX_WRAPPERS):  # a middleware around the app keeps it as ``.app``
            if hasattr(app, "openapi_url"):
                found = True
                break
            app = getattr(app, "app", None)
        url = getattr(app, "openapi_url", None) if found else None
        return JSONResponse({"fastapi": found, "openapi_url": url if isinstance(url, str) else None})


def create_app() -> LabHarness:
    reference = os.environ.get(wire.TARGET_ENV)
    run_dir = os.environ.get(wire.RUN_DIR_ENV)
    if not reference or not run_dir:
        raise RuntimeError(f"{wire.TARGET_ENV} and {wire.RUN_DIR_ENV} must be set (the lab sets them)")
    engine_sites = _import_app(reference)  # done at this module's import, unless the target was not set then
    module_name = reference.partition(":")[0]
    target = load(reference)
    engine_reference = os.environ.get(wire.ENGINE_ENV)
    engine = load_engine(engine_reference) if engine_reference else find_engine(target, module_name)
    return LabHarness(
        target,
        engine,
        stats_dir=Path(run_dir) / wire.STATS_DIR,
        errors_dir=Path(run_dir) / wire.ERRORS_DIR,
        identity=describe(target, module_name, engine),
        inside=os.environ.get(wire.INSIDE_ENV, ""),
        engine_sites=engine_sites,
    )


# uvicorn imports an app named ``module:app`` before it starts its event loop (``uvicorn.main.run`` loads it to
# fail fast), but calls a factory (``create_app``) inside the loop. The target is imported here, when uvicorn
# imports this module, so that code an app runs at import (``asyncio.run(init_db())``) runs where it would under
# ``uvicorn module:app``, not inside a running loop, which ``asyncio.run()`` refuses. Under ``--workers`` uvicorn
# imports this module in each worker's loop, as it would the app. Unset when the lab itself imports the harness.
_imported: list[EngineSites | None] = []


def _import_app(reference: str) -> EngineSites | None:
    """The app's module, imported once, under the database guard, with ``create_engine``'s call sites recorded
    when the doctor asks for them (installed before the import: the app's engine is created then)."""
    if not _imported:
        sites = EngineSites() if os.environ.get(wire.SITES_ENV) == "1" else None
        if sites is not None:
            sites.install()
        import_target(reference)
        _imported.append(sites)
    return _imported[0]


if _target := os.environ.get(wire.TARGET_ENV):
    _import_app(_target)
