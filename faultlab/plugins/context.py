"""What an action or a witness gets to work with during a run: the server, the database, the run's dir."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from faultlab.backends.base import Backend, PostgresBackend
from faultlab.backends.cluster import OwnCluster
from faultlab.backends.pooler import PgBouncer
from faultlab.backends.proxy import FaultProxy
from faultlab.errors import ServerError
from faultlab.inside import stats, wire
from faultlab.inside.statements import read_statements
from faultlab.names import RunName
from faultlab.plugins.observations import ExceptionRecord
from faultlab.server import client
from faultlab.server.launch import LabServer

__all__ = ["SETTLE_DEADLINE_S", "RunContext"]

SETTLE_DEADLINE_S = 1.0
SETTLE_INTERVAL_S = 0.002


@dataclass
class RunContext:
    run: RunName
    workdir: Path  # the run's private dir: the server's files, its logs, what the harness writes
    backend: Backend
    server: LabServer
    step: int = 0  # the step being executed, 1-based as in the experiment file
    exceptions: list[ExceptionRecord] = field(default_factory=list)  # recorded since the last step ended
    marks: dict[str, Any] = field(default_factory=dict)  # what a witness read before the step (``before_step``)
    fault_proxy: FaultProxy | None = None  # between the app and its database (``setup.network = "fault-proxy"``)
    pooler: PgBouncer | None = None  # between the app and its database (``setup.pooler = "pgbouncer"``)

    def statements(self) -> dict[str, tuple[int, int]]:
        """The SQL the server now running has sent: each statement's count and latest run (``inside.statements``)."""
        return read_statements(self.workdir / wire.STATS_DIR, self.server.pids())

    @property
    def postgres(self) -> PostgresBackend:
        """The run's PostgreSQL backend, for the actions and witnesses the registry allows on PostgreSQL only."""
        assert isinstance(self.backend, PostgresBackend), "a PostgreSQL-only action or witness on another backend"
        return self.backend

    @property
    def cluster(self) -> OwnCluster:
        """The run's own PostgreSQL server, for the actions that stop or signal it (``needs_own_cluster``)."""
        cluster = self.postgres.cluster
        assert cluster is not None, "an action that needs the run's own cluster on another server"
        return cluster

    @property
    def database_port(self) -> int:
        """The port the app's connections to its database go to: PgBouncer's, the proxy's, or the server's."""
        if self.pooler is not None:
            return self.pooler.port
        return self.fault_proxy.port if self.fault_proxy is not None else self.postgres.port

    @property
    def proxy(self) -> FaultProxy:
        """The fault proxy between the app and its database, for the actions and witnesses that need it."""
        assert self.fault_proxy is not None, "a fault-proxy action or witness in a run without the proxy"
        return self.fault_proxy

    def counters(self, pids: set[int] | None = None) -> stats.Counters | None:
        """The harness's counters for the server now running (earlier servers of this run are left out);
        ``pids``, when the caller already knows them, saves a walk of the process table."""
        return stats.read_all(self.workdir / wire.STATS_DIR, self.server.pids() if pids is None else pids)

    def plugin_counters(self, name: str, counters: Sequence[str]) -> dict[str, int] | None:
        """A plugin's own counters (kept by its inside part, ``Inside.counters``) for the server now running,
        summed over its processes; None when it has published none."""
        return stats.read_counters(self.workdir / wire.STATS_DIR, name, counters, self.server.pids())

    def settle(self, deadline_s: float = SETTLE_DEADLINE_S) -> stats.Counters | None:
        """Wait (briefly) until the server has finished every request: a yield dependency's clean-up runs
        after the response is sent. Read from shared memory, so waiting disturbs nothing. The counters then
        (None: the server has published none); after ``deadline_s``, whatever they are."""
        deadline = time.monotonic() + deadline_s
        pids = self.server.pids()  # once: finding the workers walks the process table
        counters = self.counters(pids)
        while counters is not None and counters.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(SETTLE_INTERVAL_S)
            counters = self.counters(pids)
        return counters

    def statement_count(self) -> int:
        """How many SQL statements the server now running has sent in all."""
        return sum(count for count, _ in self.statements().values())

    def harness(self, path: str, *, method: str = "POST") -> dict[str, Any]:
        """Ask the harness to act (the garbage-collector actions); a failure here is the lab's problem."""
        try:
            return client.probe(self.server.base_url, wire.PROBE_PREFIX + path, method=method)
        except httpx.HTTPError as exc:
            self.server.check_alive("during the run")
            raise ServerError(f"the lab harness did not answer {method} {wire.PROBE_PREFIX}{path}: {exc}") from exc
