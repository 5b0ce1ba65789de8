"""The user's app as the doctor's checks reach it: requests through a client of its own, everything else
through the run's context (``plugins.context.RunContext``), as the catalogue's actions and witnesses read it: the
settle, the harness's counters and statements, the operating system's count (``faultlab.doctor.os_view``) and
PostgreSQL's view of the app's sessions (the ``pg_activity`` witness)."""

from __future__ import annotations

from typing import Any

import httpx

from faultlab.backends.base import Backend, PostgresBackend
from faultlab.doctor.openapi import Operation
from faultlab.doctor.os_view import OsView, Unobservable
from faultlab.doctor.values import Values
from faultlab.inside import stats, wire
from faultlab.plugins.context import RunContext
from faultlab.running.errorlog import ErrorLog
from faultlab.server import client
from faultlab.server.launch import LabServer
from faultlab.witnesses.postgres import PgActivity

__all__ = ["REQUEST_TIMEOUT_S", "Live"]

REQUEST_TIMEOUT_S = 10.0


class Live:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.errors = ErrorLog(ctx.workdir / wire.ERRORS_DIR)
        self.headers: dict[str, str] = {}  # the user's credentials, on every request to the app (``credentials``)
        self.client = client.fresh_connections(ctx.server.base_url, timeout_s=REQUEST_TIMEOUT_S)
        self.pool = False  # whether the harness found the app's engine and watches its pool
        self.pool_size = -1  # the engine's pool_size, -1 when unknown
        self.values: Values | None = None  # each operation's request, once the document is read
        self.probe_baseline_ms = 0.0  # the loop's probe with the server idle (``exercise.probe_baseline``)
        self.os: OsView | None = OsView(ctx)
        self.os_problem = ""
        self._activity = PgActivity() if isinstance(ctx.backend, PostgresBackend) else None

    @property
    def server(self) -> LabServer:
        return self.ctx.server

    @property
    def backend(self) -> Backend:
        return self.ctx.backend

    @property
    def on_postgresql(self) -> bool:
        return self._activity is not None

    def seen_by_os(self) -> int | None:
        """The operating system's count now; None once it could not be read (``os_problem`` says why)."""
        if self.os is None:
            return None
        try:
            return self.os.read()
        except Unobservable as exc:
            self.os, self.os_problem = None, str(exc)
            return None

    def counters(self) -> stats.Counters | None:
        return self.ctx.counters()

    def settled(self) -> stats.Counters | None:
        """The counters once every request has finished (its dependencies' clean-up included)."""
        return self.ctx.settle()

    def statements(self) -> int:
        """SQL statements the server has sent so far (the harness counts them on every engine)."""
        return self.ctx.statement_count()

    def idle_in_transaction(self) -> int | None:
        """PostgreSQL's own count of the app's sessions that began a transaction and sit idle in it."""
        if self._activity is None:
            return None
        # The app's role only: the doctor's own connections (the write lock's) are the administrator's.
        return int(self._activity.sample(self.ctx)["pg_idle_in_transaction"])

    def harness(self, path: str) -> None:
        self.ctx.harness(path)

    def sites(self, *, checked_out_only: bool = False) -> dict[str, Any]:
        """Where the harness saw things happen in the app's code (``faultlab.inside.sites``): the connections
        still checked out and where each was taken, the lazy loads so far. The route is async and touches no
        database, so asking changes nothing it reports; during a request, ask ``checked_out_only``: the rest
        reads source files on the event loop."""
        return self.ctx.harness("sites?only=checked_out" if checked_out_only else "sites", method="GET")

    def loop_arm(self) -> None:
        """Start noting where the event loop is held (``faultlab.inside.loop_sampler``), before a timed request."""
        self.ctx.harness("loop/arm")

    def loop_held_at(self) -> list[dict[str, Any]]:
        """Where the loop was held since ``loop_arm``, most often first (empty when it was never held in the app's
        code, or the harness notes no sites)."""
        held: list[dict[str, Any]] = self.ctx.harness("loop", method="GET").get("held_at", [])
        return held

    def send(self, operation: Operation, item_id: object | None = None) -> httpx.Response:
        """The operation's request (``faultlab.doctor.values``), ``item_id`` in its path."""
        request = self.values.request(operation).httpx_kwargs() if self.values is not None else {}
        return self.client.request(operation.method, operation.url(item_id), **request)

    def authorize(self, headers: dict[str, str]) -> None:
        """Send these headers (the user's credentials) with every request to the app from now on."""
        self.headers = dict(headers)
        self.client.headers.update(self.headers)

    def reconnect(self) -> None:
        """A fresh client: the server's exception may have closed the kept-alive connection under the old one."""
        self.client.close()
        self.client = client.fresh_connections(self.server.base_url, timeout_s=REQUEST_TIMEOUT_S, headers=self.headers)
