"""How the checkup exercises one operation, before any check judges it: a few requests one at a time, the
counts before and after each (the pool's checked-out connections, PostgreSQL's sessions idle in transaction,
the operating system's count, SQL statements), then one more request timed beside a probe of the event loop,
then a collection of the garbage. What it saw is an ``Exercised`` (``faultlab.doctor.contract``)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import httpx

from faultlab.doctor.contract import CheckupContext, Exercised
from faultlab.doctor.live import REQUEST_TIMEOUT_S, Live
from faultlab.doctor.lock import write_lock
from faultlab.doctor.openapi import Operation, is_collection_read
from faultlab.doctor.report import Checked
from faultlab.inside import wire

__all__ = ["HOLD_S", "exercise"]

REPEAT = 4  # requests per operation: enough for a leak to show as a climb, few enough to stay bounded
PROBE_INTERVAL_S = 0.005
HOLD_S = 0.8  # a write is timed while another connection holds the write lock this long
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def exercise(ctx: CheckupContext, operation: Operation) -> Exercised:
    """The operation a few times, then timed (not a delete), then the collector run once; the first id a
    create answered with is kept in ``ctx`` for the reads by id."""
    live, document = ctx.live, ctx.document
    checked, made = _repeat(live, operation, ctx.created, document)
    ctx.report.checked.append(checked)  # at once: an interrupted checkup keeps what it saw
    if operation.method == "POST" and not operation.path_params and ctx.created is None and made is not None:
        ctx.created, ctx.created_by = made, operation.label
    exercised = Exercised(operation, checked, raised=[str(record) for record in live.errors.read_new()])
    if operation.method != "DELETE":
        took, slowest, exercised.answered_meanwhile, exercised.idle_ms, exercised.locked = _loop_probe(
            live, operation, ctx.created, document
        )
        checked.took_ms, checked.probe_max_ms, exercised.timed = took, slowest, True
        checked.idle_during_ms = exercised.idle_ms if live.on_postgresql else None
    live.errors.read_new()  # the timed request's, not counted in this operation's statuses
    live.harness("gc")  # each operation starts from what a collection leaves
    checked.os_after_collection = live.seen_by_os() if checked.os_open else None
    return exercised


def _repeat(
    live: Live, operation: Operation, item_id: object | None, document: dict[str, Any]
) -> tuple[Checked, object | None]:
    """The operation a few times, one at a time; the checked-out count before and after each; the first id
    a response carried (what a create made)."""
    before = live.settled()
    series = [before.pool_checked_out if before else 0] if live.pool else []
    idle = [n] if (n := live.idle_in_transaction()) is not None else []
    seen = [n] if (n := live.seen_by_os()) is not None else []
    statuses, first_id = [], None
    statements: list[int] = []
    repeat = 1 if operation.method == "DELETE" else REPEAT
    for attempt in range(repeat):
        sent_before = live.statements()
        response = live.send(operation, item_id, document)
        statuses.append(response.status_code)
        first_id = first_id if first_id is not None else _created_id(response)
        after = live.settled()
        if live.pool:
            series.append(after.pool_checked_out if after else 0)
        if attempt == 0 and is_collection_read(operation):
            statements = [live.statements() - sent_before]
        if idle:
            idle.append(live.idle_in_transaction() or 0)
        if seen and (n := live.seen_by_os()) is not None:
            seen.append(n)
    return Checked(operation.label, statuses, series, idle, statements=statements, os_open=seen), first_id


def _loop_probe(
    live: Live, operation: Operation, item_id: object | None, document: dict[str, Any]
) -> tuple[float, float, int, float, bool]:
    """The operation once more, while a cheap route that runs on the event loop (the harness's ready
    probe, async, no database) is asked every few milliseconds: (the operation's time, the slowest probe in
    ms, how many probes were answered while the operation was still running, the longest a session of the app
    sat idle in transaction meanwhile in ms, whether the write lock was held). A route that blocks the loop
    lets no probe through until it ends; a slow route that does not block lets them all through. A write runs
    while another connection holds the write lock for ``HOLD_S`` (``faultlab.doctor.lock``): a route that waits
    for it on the loop blocks it."""
    done = threading.Event()
    took: list[float] = []

    def operate() -> None:
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):  # its status was seen in the exercise; here the loop matters
            live.send(operation, item_id, document)
        took.append(time.perf_counter() - started)
        done.set()

    worker = threading.Thread(target=operate, name="doctor-operation", daemon=True)
    slowest, answered_meanwhile = 0.0, 0
    idle = _IdleWatch(live)
    held = write_lock(live.backend, HOLD_S) if operation.method in WRITES else contextlib.nullcontext()
    with held as locked, httpx.Client(base_url=live.server.base_url, timeout=REQUEST_TIMEOUT_S) as prober:
        worker.start()
        while not done.is_set():
            started = time.perf_counter()
            prober.get(wire.PROBE_PREFIX + "ready")
            slowest = max(slowest, time.perf_counter() - started)
            answered_meanwhile += not done.is_set()
            idle.sample()
            done.wait(PROBE_INTERVAL_S)
    worker.join()
    live.settled()
    return (
        round(took[0] * 1000, 1),
        round(slowest * 1000, 1),
        answered_meanwhile,
        round(idle.longest * 1000, 1),
        bool(locked),
    )


class _IdleWatch:
    """PostgreSQL only: how long, sample after sample, more of the app's sessions sat idle in transaction than
    before the request (a route that keeps its transaction open while it waits on something else)."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.before = live.idle_in_transaction()
        self.since: float | None = None
        self.longest = 0.0

    def sample(self) -> None:
        if self.before is None:
            return
        now = time.perf_counter()
        if (self.live.idle_in_transaction() or 0) > self.before:
            self.since = now if self.since is None else self.since
            self.longest = max(self.longest, now - self.since)
        else:
            self.since = None


def _created_id(response: httpx.Response) -> object | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("id") if isinstance(body, dict) else None
