"""How the checkup exercises one operation, before any check judges it: a few requests one at a time, the
counts before and after each (the pool's checked-out connections, PostgreSQL's sessions idle in transaction,
the operating system's count, SQL statements), then one more request timed beside a probe of the event loop,
then a collection of the garbage. What it saw is an ``Exercised`` (``faultlab.doctor.contract``).

The loop's probe is judged against the same probe with the server idle (``probe_baseline``): a probe stalled
when it waited ``STALL_FACTOR`` times longer than the idle one's median, and at least ``STALL_MIN_MS``."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from typing import Any

import httpx

from faultlab.doctor.contract import CheckupContext, Exercised, LoopProbe
from faultlab.doctor.ids import first_listed
from faultlab.doctor.live import REQUEST_TIMEOUT_S, Live
from faultlab.doctor.lock import write_lock
from faultlab.doctor.openapi import Operation, is_collection_read
from faultlab.doctor.report import Checked
from faultlab.inside import wire
from faultlab.server import client

__all__ = ["HOLD_S", "IDLE_SITES_AFTER_S", "exercise", "loop_probe", "probe_baseline", "stall_threshold_ms"]

REPEAT = 4  # requests per operation: enough for a leak to show as a climb, few enough to stay bounded
PROBE_INTERVAL_S = 0.005
HOLD_S = 0.8  # a write is timed while another connection holds the write lock this long
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BASELINE_PROBES = 20
STALL_FACTOR = 10.0
STALL_MIN_MS = 20.0
IDLE_SITES_AFTER_S = 0.2  # idle in transaction this long: where the connections checked out were taken is read


def probe_baseline(live: Live) -> float:
    """The median of a few probes of the loop with the server idle, in ms: what "a free loop" answers in on this
    machine now (the median: one hiccup of a busy machine must not raise the bar ten times over)."""
    latencies = []
    with client.kept_alive(live.server.base_url, timeout_s=REQUEST_TIMEOUT_S) as prober:
        prober.get(wire.PROBE_PREFIX + "ready")  # the connection, made once, as in ``loop_probe``
        for _ in range(BASELINE_PROBES):
            started = time.perf_counter()
            prober.get(wire.PROBE_PREFIX + "ready")
            latencies.append(time.perf_counter() - started)
            time.sleep(PROBE_INTERVAL_S)
    return round(statistics.median(latencies) * 1000, 2)


def stall_threshold_ms(baseline_ms: float) -> float:
    return max(STALL_MIN_MS, STALL_FACTOR * baseline_ms)


def exercise(ctx: CheckupContext, operation: Operation, item_id: object | None) -> Exercised:
    """The operation a few times, then timed (not a delete), then the collector run once; what a create answered
    with and what a collection read listed are kept in ``ctx.ids`` for the operations by id."""
    live = ctx.live
    checked, answer = _repeat(live, operation, item_id)
    ctx.report.checked.append(checked)  # at once: an interrupted checkup keeps what it saw
    if operation.method == "POST" and not operation.path_params and answer is not None:
        ctx.ids.keep(operation.path.rstrip("/"), answer, f"created by {operation.label}")
        if ctx.created is None and (made := ctx.ids.for_collection(operation.path.rstrip("/"))) is not None:
            ctx.created, ctx.created_by = made.value, operation.label
    elif is_collection_read(operation) and (item := first_listed(answer)) is not None:
        ctx.ids.keep(operation.collection, item, f"listed by {operation.label}")
    records = live.errors.read_new()
    exercised = Exercised(operation, checked, raised=[str(r) for r in records], item_id=item_id)
    exercised.raised_where = [r.where for r in records]
    exercised.raised_loading = [r.loading for r in records]
    if checked.checked_out and checked.checked_out[-1] > checked.checked_out[0]:
        # Before the timed request and the collection: the connections this operation kept, and where from.
        exercised.leak_sites = list(live.sites(checked_out_only=True).get("checked_out", []))
    if operation.method != "DELETE":
        probe = loop_probe(live, operation, item_id)
        exercised.probe, exercised.timed = probe, True
        exercised.answered_meanwhile, exercised.idle_ms, exercised.locked = probe.answered, probe.idle_ms, probe.locked
        exercised.idle_sites = probe.idle_sites
        checked.took_ms, checked.probe_max_ms = probe.took_ms, probe.slowest_ms
        checked.stalled_ms, checked.probes_answered = probe.stalled_ms, probe.answered
        checked.idle_during_ms = probe.idle_ms if live.on_postgresql else None
    live.errors.read_new()  # the timed request's, not counted in this operation's statuses
    live.harness("gc")  # each operation starts from what a collection leaves
    checked.os_after_collection = live.seen_by_os() if checked.os_open else None
    return exercised


def _repeat(live: Live, operation: Operation, item_id: object | None) -> tuple[Checked, object | None]:
    """The operation a few times, one at a time; the checked-out count before and after each; the SQL statements
    its first request ran; the first JSON answer of a 2xx (what a create made, what a read listed)."""
    before = live.settled()
    series = [before.pool_checked_out if before else 0] if live.pool else []
    opened = [before.pool_open if before else 0] if live.pool else []
    idle = [n] if (n := live.idle_in_transaction()) is not None else []
    seen = [n] if (n := live.seen_by_os()) is not None else []
    statuses: list[int] = []
    statements: list[int] = []
    answer: object | None = None
    repeat = 1 if operation.method == "DELETE" else REPEAT
    for attempt in range(repeat):
        sent_before = live.statements()
        response = live.send(operation, item_id)
        statuses.append(response.status_code)
        if answer is None and 200 <= response.status_code < 300:
            answer = _json(response)
        after = live.settled()
        if attempt == 0:  # once the server finished it: its dependencies' clean-up (a commit) counts too
            statements = [live.statements() - sent_before]
        if live.pool:
            series.append(after.pool_checked_out if after else 0)
            opened.append(after.pool_open if after else 0)
        if idle:
            idle.append(live.idle_in_transaction() or 0)
        if seen and (n := live.seen_by_os()) is not None:
            seen.append(n)
    checked = Checked(operation.label, statuses, series, idle, statements=statements, os_open=seen, pool_open=opened)
    return checked, answer


def loop_probe(live: Live, operation: Operation, item_id: object | None) -> LoopProbe:
    """The operation once more, while a cheap route that runs on the event loop (the harness's ready probe,
    async, no database) is asked every few milliseconds. A route that blocks the loop lets no probe through
    until it ends: the probe sent just before waits as long as the block (``stalled_ms``); a slow route that
    does not block lets them all through. Probes answered before and after the block (while a dependency runs
    in the thread pool, say) are counted, never held against it. A write runs while another connection holds
    the write lock for ``HOLD_S`` (``faultlab.doctor.lock``): a route that waits for it on the loop blocks it."""
    done = threading.Event()
    took: list[float] = []

    def operate() -> None:
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):  # its status was seen in the exercise; here the loop matters
            live.send(operation, item_id)
        took.append(time.perf_counter() - started)
        done.set()

    worker = threading.Thread(target=operate, name="doctor-operation", daemon=True)
    latencies: list[float] = []
    answered_meanwhile = 0
    idle = _IdleWatch(live)
    held = write_lock(live.backend, HOLD_S) if operation.method in WRITES else contextlib.nullcontext()
    with held as locked, client.kept_alive(live.server.base_url, timeout_s=REQUEST_TIMEOUT_S) as prober:
        worker.start()
        while not done.is_set():
            started = time.perf_counter()
            prober.get(wire.PROBE_PREFIX + "ready")
            latencies.append((time.perf_counter() - started) * 1000)
            answered_meanwhile += not done.is_set()
            idle.sample()
            done.wait(PROBE_INTERVAL_S)
    worker.join()
    idle.join()
    live.settled()
    threshold = stall_threshold_ms(live.probe_baseline_ms)
    return LoopProbe(
        took_ms=round(took[0] * 1000, 1),
        slowest_ms=round(max(latencies, default=0.0), 1),
        stalled_ms=round(sum(t for t in latencies if t >= threshold), 1),
        answered=answered_meanwhile,
        idle_ms=round(idle.longest * 1000, 1),
        locked=bool(locked),
        idle_sites=idle.sites,
    )


class _IdleWatch:
    """PostgreSQL only: how long, sample after sample, more of the app's sessions sat idle in transaction than
    before the request (a route that keeps its transaction open while it waits on something else)."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.before = live.idle_in_transaction()
        self.since: float | None = None
        self.longest = 0.0
        self.sites: list[dict[str, Any]] = []  # the connections checked out while it was idle, and where from
        self._reader: threading.Thread | None = None

    def sample(self) -> None:
        if self.before is None:
            return
        now = time.perf_counter()
        if (self.live.idle_in_transaction() or 0) > self.before:
            self.since = now if self.since is None else self.since
            self.longest = max(self.longest, now - self.since)
            if self.longest >= IDLE_SITES_AFTER_S and self._reader is None:
                # From a thread of its own: a read that waits on a busy loop must not hold the loop's probes.
                self._reader = threading.Thread(target=self._read_sites, name="doctor-idle-sites", daemon=True)
                self._reader.start()
        else:
            self.since = None

    def _read_sites(self) -> None:
        """The connections checked out at least as long as the session has sat idle: the idle one among them."""
        with contextlib.suppress(Exception):  # unread, the finding says it cannot tell where
            checked_out = self.live.sites(checked_out_only=True).get("checked_out", [])
            self.sites = [entry for entry in checked_out if float(entry.get("seconds", 0)) >= IDLE_SITES_AFTER_S]

    def join(self) -> None:
        if self._reader is not None:
            self._reader.join(REQUEST_TIMEOUT_S)


def _json(response: httpx.Response) -> object | None:
    try:
        return response.json()  # type: ignore[no-any-return]
    except ValueError:
        return None
