"""Serve a user's app under the lab's harness on a real server and look for connection leaks, operation by
operation, with two of the witnesses the catalogue uses: the pool's checked-out count, read from shared
memory, and the operating system's count of the server's connections to the database (``lab.doctor.os_view``),
which sees them whatever library opened them.

The garbage collector is switched off while an operation is exercised (as missing-yield does), so a
session that is never closed shows as a connection that stays checked out, every time, instead of when the
collector happens not to run. Bounded: a few requests per operation, loopback only, a deadline per request.
A check that cannot run on the app is recorded with why and what to do (``lab.doctor.verdict``).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from lab import client, stats, wire
from lab.backends import Backend, PostgresBackend, SqliteBackend
from lab.context import RunContext
from lab.doctor.lock import write_lock
from lab.doctor.openapi import Operation, body_for, operations
from lab.doctor.os_view import OsView, Unobservable
from lab.doctor.verdict import NotRun, Verdict, judge, sentence
from lab.errorlog import ErrorLog
from lab.errors import LabError, ServerError, UsageError
from lab.interrupts import deferred
from lab.orchestrate import make_run_dir
from lab.server import LabServer
from lab.statements import read_statements
from lab.variants import Variant

__all__ = ["Checked", "Finding", "NotRun", "Report", "checkup"]

REPEAT = 4  # requests per operation: enough for a leak to show as a climb, few enough to stay bounded
REQUEST_TIMEOUT_S = 10.0
SETTLE_S = 1.0
BUDGET_STEPS = (4, 16, 48)  # concurrent requests tried, each once; bounded, loopback only
BUDGET_TIMEOUT_S = 5.0
PROBE_INTERVAL_S = 0.005
BLOCKED_MS = 100.0  # an operation slower than this, with a probe waiting half as long, may hold the loop
BLOCKED_ANSWERS = 2  # ...if at most this many probes were answered while it ran
HOLD_S = 0.8  # a write is timed while another connection holds the write lock this long
IDLE_DURING_MS = 500.0  # idle in transaction this long during a request (a glimpse between statements is not)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXHAUST_MAX = 40  # requests at most, to find how many a leak needs to exhaust the pool
EXHAUST_TIMEOUT_S = 2.0  # a request that waits this long for a connection has found the pool empty
# Why a check did not run and what to do about it, for the reasons several checks share.
_NO_ENGINE = (
    "no SQLAlchemy engine was found in the app's modules (none, or more than one)",
    "name it with --engine MODULE:ENGINE; an app without one is watched by the operating system's count only",
)
_NO_READ = "the doctor needs a collection read (a GET without parameters) that answers 2xx; fix its errors first"
_OS_CHECK = "connection leaks seen by the OS"
_OS_REMEDY = "run the doctor on Linux, as a user who may read the server's /proc entries"


@dataclass
class Checked:
    operation: str
    statuses: list[int]
    checked_out: list[int]  # after each request, once the server had finished it
    idle_in_transaction: list[int] = field(default_factory=list)  # PostgreSQL: its sessions in that state
    took_ms: float | None = None  # one more request, timed, with a cheap probe of the event loop beside it
    probe_max_ms: float | None = None
    idle_during_ms: float | None = None  # PostgreSQL: the longest a session sat idle in transaction meanwhile
    statements: list[int] = field(default_factory=list)  # SQL statements per request: first, and once rows exist
    # The operating system's count (``Report.os_witness`` says of what): before, then after each request...
    os_open: list[int] = field(default_factory=list)
    os_after_collection: int | None = None  # ...and once the operation was done and the collector had run


def tally(statuses: list[int]) -> str:
    """``200,200,200,500`` as ``200×3,500``: 48 answers at once read as one."""
    runs: list[list[int]] = []
    for status in statuses:
        if runs and runs[-1][0] == status:
            runs[-1][1] += 1
        else:
            runs.append([status, 1])
    return ",".join(f"{status}×{count}" if count > 1 else str(status) for status, count in runs)


@dataclass
class Finding:
    kind: str
    operation: str
    evidence: str


@dataclass
class Report:
    target: str
    database: str
    checked: list[Checked] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[NotRun] = field(default_factory=list)  # checks that apply and did not run: incomplete
    interrupted: bool = False  # Ctrl+C or SIGTERM: what was found until then, the rest not checked
    not_applicable: list[NotRun] = field(default_factory=list)  # the other database's checks: no gap
    disagreements: list[Finding] = field(default_factory=list)  # where the pool and the OS saw otherwise
    os_witness: str = ""  # what the operating system's count counts ("" when it could not be read)

    @property
    def verdict(self) -> Verdict:
        return judge(findings=len(self.findings), not_run=len(self.not_checked), interrupted=self.interrupted)[0]

    @property
    def exit_code(self) -> int:
        return judge(findings=len(self.findings), not_run=len(self.not_checked), interrupted=self.interrupted)[1]

    @property
    def summary(self) -> str:
        return sentence(self.verdict, findings=len(self.findings), not_run=len(self.not_checked))

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "exit_code": self.exit_code, **asdict(self)}


class CheckupInterrupted(KeyboardInterrupt):
    """An interrupted checkup; carries its report so far, so that what was found is not lost."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.target)
        self.report = report


class _Server:
    def __init__(self, server: LabServer, workdir: Path, backend: Backend) -> None:
        self.server = server
        self.backend = backend
        self.stats_dir = workdir / wire.STATS_DIR
        self.errors = ErrorLog(workdir / wire.ERRORS_DIR)
        self.client = client.fresh_connections(server.base_url, timeout_s=REQUEST_TIMEOUT_S)
        self.pool = False  # whether the harness found the app's engine and watches its pool
        # The catalogue's witnesses take a run's context; the doctor's run is one "fault" run of the user's app.
        self.os: OsView | None = OsView(RunContext("fault", workdir, backend, server))
        self.os_problem = ""

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
        return stats.read_all(self.stats_dir, self.server.pids())

    def settled(self) -> stats.Counters | None:
        """The counters once every request has finished (its dependencies' clean-up included)."""
        deadline = time.monotonic() + SETTLE_S
        counters = self.counters()
        while counters is not None and counters.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.005)
            counters = self.counters()
        return counters

    def statements(self) -> int:
        """SQL statements the server has sent so far (the harness counts them on every engine)."""
        return sum(count for count, _ in read_statements(self.stats_dir, self.server.pids()).values())

    def statements_of(self, operation: Operation, item_id: object | None, document: dict[str, Any]) -> int:
        before = self.statements()
        self.send(operation, item_id, document)
        self.settled()
        return self.statements() - before

    def idle_in_transaction(self) -> int | None:
        """PostgreSQL's own count of the app's sessions that began a transaction and sit idle in it."""
        if not isinstance(self.backend, PostgresBackend):
            return None
        # The app's role only: the doctor's own connections (the write lock's) are the administrator's.
        return self.backend.activity()[1]

    def harness(self, path: str) -> None:
        self.client.post(wire.PROBE_PREFIX + path).raise_for_status()

    def send(self, operation: Operation, item_id: object | None, document: dict[str, Any]) -> httpx.Response:
        body = body_for(operation.body_schema, document) if operation.body_schema else None
        return self.client.request(
            operation.method, operation.url(item_id), json=body if operation.body_schema else None
        )


def _exercise(
    server: _Server, operation: Operation, item_id: object | None, document: dict[str, Any]
) -> tuple[Checked, object | None]:
    """The operation a few times, one at a time; the checked-out count before and after each; the first id
    a response carried (what a create made)."""
    before = server.settled()
    series = [before.pool_checked_out if before else 0] if server.pool else []
    idle = [n] if (n := server.idle_in_transaction()) is not None else []
    seen = [n] if (n := server.seen_by_os()) is not None else []
    statuses, first_id = [], None
    statements: list[int] = []
    repeat = 1 if operation.method == "DELETE" else REPEAT
    for attempt in range(repeat):
        sent_before = server.statements()
        response = server.send(operation, item_id, document)
        statuses.append(response.status_code)
        first_id = first_id if first_id is not None else _created_id(response)
        after = server.settled()
        if server.pool:
            series.append(after.pool_checked_out if after else 0)
        if attempt == 0 and _is_list(operation):
            statements = [server.statements() - sent_before]
        if idle:
            idle.append(server.idle_in_transaction() or 0)
        if seen and (n := server.seen_by_os()) is not None:
            seen.append(n)
    return Checked(operation.label, statuses, series, idle, statements=statements, os_open=seen), first_id


def _loop_probe(
    server: _Server, operation: Operation, item_id: object | None, document: dict[str, Any]
) -> tuple[float, float, int, float, bool]:
    """The operation once more, while a cheap route that runs on the event loop (the harness's ready
    probe, async, no database) is asked every few milliseconds: (the operation's time, the slowest probe in
    ms, how many probes were answered while the operation was still running, the longest a session of the app
    sat idle in transaction meanwhile in ms, whether the write lock was held). A route that blocks the loop
    lets no probe through until it ends; a slow route that does not block lets them all through. A write runs
    while another connection holds the write lock for ``HOLD_S`` (``lab.doctor.lock``): a route that waits
    for it on the loop blocks it."""
    done = threading.Event()
    took: list[float] = []

    def operate() -> None:
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):  # its status was seen in the exercise; here the loop matters
            server.send(operation, item_id, document)
        took.append(time.perf_counter() - started)
        done.set()

    worker = threading.Thread(target=operate, name="doctor-operation", daemon=True)
    slowest, answered_meanwhile = 0.0, 0
    idle = _IdleWatch(server)
    held = write_lock(server.backend, HOLD_S) if operation.method in WRITES else contextlib.nullcontext()
    with held as locked, httpx.Client(base_url=server.server.base_url, timeout=REQUEST_TIMEOUT_S) as prober:
        worker.start()
        while not done.is_set():
            started = time.perf_counter()
            prober.get(wire.PROBE_PREFIX + "ready")
            slowest = max(slowest, time.perf_counter() - started)
            answered_meanwhile += not done.is_set()
            idle.sample()
            done.wait(PROBE_INTERVAL_S)
    worker.join()
    server.settled()
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

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.before = server.idle_in_transaction()
        self.since: float | None = None
        self.longest = 0.0

    def sample(self) -> None:
        if self.before is None:
            return
        now = time.perf_counter()
        if (self.server.idle_in_transaction() or 0) > self.before:
            self.since = now if self.since is None else self.since
            self.longest = max(self.longest, now - self.since)
        else:
            self.since = None


def _is_list(operation: Operation) -> bool:
    return operation.method == "GET" and not operation.path_params


def _statements_per_row(live: _Server, report: Report, document: dict[str, Any], created: object | None) -> None:
    """Each collection read once more, now that the creates made rows: statements that grew with the rows
    are one query per row (N+1), usually a relationship loaded lazily while the response is built."""
    check = "statements grow with rows (N+1)"
    if created is None:
        report.not_checked.append(
            NotRun(
                check,
                "no create answered with an id, so the doctor made no rows to compare with",
                "give the collection a create (POST) whose answer carries the new row's id",
            )
        )
        return
    if live.statements() == 0:
        report.not_checked.append(
            NotRun(
                check,
                "the harness saw no SQL statement from the app: it counts those sent through SQLAlchemy",
                "count a collection read's statements yourself, before and after rows exist (sqlite3: "
                "Connection.set_trace_callback)",
            )
        )
        return
    for checked in report.checked:
        if not checked.statements:
            continue
        method, _, path = checked.operation.partition(" ")
        now = live.statements_of(Operation(method, path), None, document)
        checked.statements.append(now)
        if now >= checked.statements[0] + 2:
            report.findings.append(
                Finding(
                    "statements grow with rows",
                    checked.operation,
                    f"{checked.statements[0]} SQL statement(s) per request before the doctor's creates, {now} "
                    "after them: one more per row (N+1), e.g. a relationship loaded lazily while the response "
                    "is built; load it with the query (selectinload)",
                )
            )


def _healthy_reads(report: Report, document: dict[str, Any]) -> list[Operation]:
    """Collection reads that answered 2xx one at a time: only their failures at once say something about the
    pool (a route that always fails is a server error, already found)."""
    fine = {c.operation for c in report.checked if c.statuses and all(200 <= s < 300 for s in c.statuses)}
    return [o for o in _plan(operations(document)) if _is_list(o) and not o.required_query and o.label in fine]


def _exhaustion(live: _Server, report: Report, document: dict[str, Any]) -> None:
    """With the collector still off, a collection read that leaks is sent again and again until a request
    fails or waits ``EXHAUST_TIMEOUT_S`` for a connection: how many requests it takes to empty the pool.
    A collection then gives the leaked connections back (and the waiting request its answer)."""
    leaking = {f.operation for f in report.findings if f.kind == "connection leak"}
    reads = [o for o in _healthy_reads(report, document) if o.label in leaking]
    if not reads:
        return
    operation = reads[0]
    live.harness("gc")  # from what a collection leaves, as each operation was
    statuses: list[int] = []
    headers = {"connection": "close"}  # a request given up on must not take the next one's connection with it
    try:
        with client.fresh_connections(live.server.base_url, timeout_s=EXHAUST_TIMEOUT_S, headers=headers) as sender:
            for number in range(1, EXHAUST_MAX + 1):
                try:
                    status: int | None = sender.request(operation.method, operation.path).status_code
                    answer = str(status)
                except httpx.TimeoutException:
                    status, answer = None, f"no answer within {EXHAUST_TIMEOUT_S:g} s (waiting for a connection)"
                except httpx.TransportError as exc:
                    status, answer = None, f"no answer ({exc})"
                statuses.append(status or 0)
                if status is None or status >= 500:
                    out = live.counters()
                    report.findings.append(
                        Finding(
                            "pool exhausted",
                            operation.label,
                            f"{number - 1} requests in a row emptied the pool: request {number} got {answer}, with "
                            f"{out.pool_checked_out if out else '?'} connections checked out (collector off)",
                        )
                    )
                    return
    finally:
        report.checked.append(Checked(f"{operation.label} until the pool runs out", statuses, []))
        live.harness("gc")
        live.settled()


def _stale_connections(live: _Server, report: Report, document: dict[str, Any]) -> None:
    """PostgreSQL only: end the app's sessions as a database restart or a failover would, then read again.
    A pool that hands out a dead connection without testing it (no ``pool_pre_ping``) fails that request."""
    backend = live.backend
    check = "stale pooled connections"
    reads = [o for o in _plan(operations(document)) if _is_list(o) and not o.required_query]
    if not isinstance(backend, PostgresBackend):
        report.not_applicable.append(NotRun(check, "PostgreSQL only", "run with --db postgresql to include it"))
        return
    if not live.pool:
        report.not_checked.append(NotRun(check, *_NO_ENGINE))
        return
    if not reads:
        report.not_checked.append(NotRun(check, "no collection read (a GET without parameters) to send", _NO_READ))
        return
    live.server.check_alive("before the stale-connection check")
    pooled = live.settled()
    if pooled is None or pooled.pool_open == 0:
        report.not_applicable.append(
            NotRun(check, "the pool keeps no connection open between requests (as NullPool does): none can go stale")
        )
        return
    backend.terminate_app_sessions()
    try:
        status: int | None = live.send(reads[0], None, document).status_code
        answer = str(status)
    except httpx.TransportError as exc:  # the server's exception can cut the connection before the 500 is read
        status, answer = None, f"no answer ({exc})"
    # The server's exception may have closed the kept-alive connection under the client: start afresh.
    live.client.close()
    live.client = client.fresh_connections(live.server.base_url, timeout_s=REQUEST_TIMEOUT_S)
    report.checked.append(Checked(f"{reads[0].label} after a database restart", [status or 0], []))
    if status is None or status >= 500:
        report.findings.append(
            Finding(
                "stale pooled connection",
                reads[0].label,
                f"after PostgreSQL ended the app's {pooled.pool_open} pooled session(s) (as a restart or failover "
                f"does), the next request got {answer}: the pool handed out a dead connection; "
                "create_engine(..., pool_pre_ping=True) tests it first",
            )
        )


def _pool_budget(live: _Server, report: Report, document: dict[str, Any]) -> None:
    """A collection read, 4, 16, then 48 at once (the collector back on, as in production): the concurrency at
    which requests start to fail, and how. A pool smaller than the server's concurrency makes requests
    wait for a connection (``pool_timeout``) and then fail; a leak makes that happen much sooner."""
    reads = _healthy_reads(report, document)
    if not reads:
        report.not_checked.append(
            NotRun("pool budget", "no collection read that answers 2xx one at a time, to send at once", _NO_READ)
        )
        return
    operation = reads[0]
    for concurrency in BUDGET_STEPS:
        outcomes = client.send_many(
            client.Request(operation.method, live.server.base_url + operation.path),
            repeat=concurrency,
            concurrency=concurrency,
            timeout_s=BUDGET_TIMEOUT_S,
        )
        failed = [o for o in outcomes if not o.ok]
        report.checked.append(
            Checked(f"{operation.label}, {concurrency} at once", [o.status or 0 for o in outcomes], [])
        )
        if failed:
            how = sorted({str(o.status) if o.status else f"no answer ({o.failure})" for o in failed})
            report.findings.append(
                Finding(
                    "pool budget exceeded",
                    operation.label,
                    f"{len(failed)} of {concurrency} concurrent requests failed ({', '.join(how)}; a timeout "
                    f"is no answer within {BUDGET_TIMEOUT_S:g} s), while {BUDGET_STEPS[0]} at once were fine"
                    if concurrency != BUDGET_STEPS[0]
                    else f"{len(failed)} of only {concurrency} concurrent requests failed ({', '.join(how)})",
                )
            )
            return


def _created_id(response: httpx.Response) -> object | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("id") if isinstance(body, dict) else None


def _plan(ops: list[Operation]) -> list[Operation]:
    """Reads of collections, then creates, then the rest by id, deletes last."""
    collection_reads = [o for o in ops if o.method == "GET" and not o.path_params]
    creates = [o for o in ops if o.method == "POST" and not o.path_params]
    by_id = [o for o in ops if o.path_params and o.method != "DELETE"]
    deletes = [o for o in ops if o.path_params and o.method == "DELETE"]
    return [*collection_reads, *creates, *by_id, *deletes]


def _startup_problem(error: str, app_dir: Path) -> str:
    """An import error in the user's app: its file, line and message, not the lab's traceback."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', error)
    # Not the app's: Python's own frames, installed packages (a venv inside the app's dir too), the lab's harness.
    theirs = [Path(__file__).resolve().parents[1], Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    mine = [
        (f, n)
        for f, n in frames
        if not f.startswith("<")
        and Path(f).resolve().is_relative_to(app_dir.resolve())
        and not any(Path(f).resolve().is_relative_to(other) for other in theirs)
    ]
    raised = [line.strip() for line in error.splitlines() if re.match(r"^\s*\w[\w.]*(Error|Exception): ", line)]
    where = f"{mine[-1][0]}:{mine[-1][1]}: " if mine else ""
    return f"{where}{raised[-1] if raised else error.splitlines()[0]}"


def _server_error(checked: Checked, raised: list[str]) -> Finding | None:
    """A 5xx on an operation the doctor built from the app's own schema is the app's error, with its exception."""
    failed = [status for status in checked.statuses if status >= 500]
    if not failed:
        return None
    what = f": {raised[0][:300]}" if raised else " (no exception reached the harness)"
    return Finding(
        "server error", checked.operation, f"{len(failed)} of {len(checked.statuses)} answered {failed[0]}{what}"
    )


def _lost_write(checked: Checked, created_by: str | None, created: object | None) -> Finding | None:
    """A read by the id a create had just answered with, found nothing: the write was never committed (or
    went to another database than the one read). Only a read under the create's own path (``POST /todos``,
    ``GET /todos/{id}``): another resource's 404 says nothing about this write."""
    if created_by is None or not checked.statuses or any(status != 404 for status in checked.statuses):
        return None
    collection = created_by.partition(" ")[2].rstrip("/")
    if not checked.operation.partition(" ")[2].startswith(collection + "/"):
        return None
    return Finding(
        "created, then not found",
        checked.operation,
        f"{created_by} answered with id {created!r}, then this read of it answered 404 every time: the create "
        "did not commit (or wrote where the reads do not look)",
    )


def _leak(checked: Checked, pool_size: int) -> Finding | None:
    """Checked-out connections that stay above the baseline after every request, with the collector off."""
    if not checked.checked_out:
        return None  # no pool to read
    baseline, after = checked.checked_out[0], checked.checked_out[1:]
    if not after or min(after) <= baseline or after[-1] < after[0]:
        return None
    kept = after[-1] - baseline
    return Finding(
        "connection leak",
        checked.operation,
        f"checked out {'→'.join(map(str, checked.checked_out))} over {len(after)} request(s) with the collector "
        f"off: {kept} connection(s) kept, about {kept / len(after):g} per request; a pool of "
        f"{pool_size if pool_size >= 0 else '?'} (+ its overflow) is soon empty unless the garbage collector "
        "happens to run (a session that is never closed)",
    )


def _idle_after(checked: Checked) -> Finding | None:
    """PostgreSQL sessions left idle in transaction once the requests are done."""
    idle = checked.idle_in_transaction
    if not idle or idle[-1] <= idle[0]:
        return None
    return Finding(
        "idle in transaction",
        checked.operation,
        f"PostgreSQL's sessions idle in transaction after each request: {'→'.join(map(str, idle))}; each holds "
        "its locks and snapshot until the session is closed (a transaction that nothing ends)",
    )


def _timed(
    live: _Server, checked: Checked, operation: Operation, created: object | None, document: dict[str, Any]
) -> list[Finding]:
    """One request timed beside a probe of the event loop (and, on PostgreSQL, a watch of its sessions)."""
    checked.took_ms, checked.probe_max_ms, answered, idle_ms, locked = _loop_probe(live, operation, created, document)
    checked.idle_during_ms = idle_ms if isinstance(live.backend, PostgresBackend) else None
    found = []
    # Blocked: a slow operation during which (almost) no probe got through, however long one waited; a busy
    # machine slows probes, but a free loop still answers them.
    slow = checked.took_ms > BLOCKED_MS and checked.probe_max_ms >= checked.took_ms / 2
    if slow and answered <= BLOCKED_ANSWERS:
        lock = f"; it ran while another connection held the write lock {HOLD_S:g} s" if locked else ""
        found.append(
            Finding(
                "event loop blocked",
                operation.label,
                f"it took {checked.took_ms:g} ms; a probe that needs only the event loop waited "
                f"{checked.probe_max_ms:g} ms and {answered} got through meanwhile: every other request waits as "
                f"long (blocking work in an async def route){lock}",
            )
        )
    if idle_ms >= IDLE_DURING_MS:
        found.append(
            Finding(
                "idle in transaction",
                operation.label,
                f"during the request a session of the app sat idle in transaction for {idle_ms:g} ms "
                "(pg_stat_activity, sampled every few ms): the route keeps its transaction open while it waits on "
                "something else; commit (or read what it needs) before waiting",
            )
        )
    return found


def _each_operation(
    live: _Server, report: Report, document: dict[str, Any], pool_size: int, progress: Any
) -> object | None:
    """Every operation of the document in turn, each from what a collection leaves; the id a create returned."""
    created: object | None = None
    created_by: str | None = None
    for operation in _plan(operations(document)):
        if operation.required_query:
            report.not_checked.append(
                NotRun(
                    f"every check on {operation.label}",
                    "it needs query parameters the doctor cannot make",
                    "give them defaults, or check this operation yourself",
                )
            )
            continue
        if operation.path_params and created is None:
            report.not_checked.append(
                NotRun(
                    f"every check on {operation.label}",
                    "no id to use: no create (POST on a collection) answered with one",
                    "give the collection a create whose answer carries the new item's id",
                )
            )
            continue
        checked, made = _exercise(live, operation, created, document)
        if operation.method == "POST" and not operation.path_params and created is None and made is not None:
            created, created_by = made, operation.label
        report.checked.append(checked)
        raised = [str(record) for record in live.errors.read_new()]
        found = [
            _server_error(checked, raised),
            _lost_write(checked, created_by, created) if operation.method == "GET" else None,
            _leak(checked, pool_size),
            _idle_after(checked),
        ]
        if operation.method != "DELETE":
            timed = _timed(live, checked, operation, created, document)
            kinds = {f.kind for f in found if f is not None}
            found += [f for f in timed if f.kind not in kinds]  # idle in transaction once per operation
        live.errors.read_new()  # the timed request's, not counted in this operation's statuses
        live.harness("gc")  # each operation starts from what a collection leaves
        checked.os_after_collection = live.seen_by_os() if checked.os_open else None
        found += _seen_by_os(live, report, checked, found)
        report.findings += [f for f in found if f is not None]
        if progress:
            progress(checked, report.findings)
    return created


def _os_judged(checked: Checked) -> bool:
    """The OS's count tells a leak only over two requests or more: the first may open the connection a pool
    then keeps (and a delete is sent once)."""
    return len(checked.statuses) >= 2 and len(checked.os_open) == len(checked.statuses) + 1


def _os_leak(checked: Checked) -> bool:
    """The count rose with every request, the first included, and never fell back (the collector off)."""
    if not _os_judged(checked):
        return False
    before, after = checked.os_open[0], checked.os_open[1:]
    return after[-1] > before and all(later > earlier for earlier, later in pairwise(after))


def _seen_by_os(live: _Server, report: Report, checked: Checked, found: list[Finding | None]) -> list[Finding | None]:
    """The OS's witness beside the pool's: a leak it sees is a finding (the pool's own, when both see it), and
    where the two disagree the report says so and why it may be."""
    if live.os is None or not checked.os_open:
        return []
    what, seen = live.os.what, "→".join(map(str, checked.os_open))
    pool_leak = next((f for f in found if f is not None and f.kind == "connection leak"), None)
    os_leak = _os_leak(checked)
    if pool_leak is not None and os_leak:
        pool_leak.evidence += f"; the operating system saw them too: {what} {seen}"
        return []
    checked_out = "→".join(map(str, checked.checked_out))
    if pool_leak is not None and _os_judged(checked):
        report.disagreements.append(
            Finding(
                "the witnesses disagree",
                checked.operation,
                f"the pool kept connections checked out ({checked_out}) while the operating system saw no new one "
                f"({what} {seen}): the pool handed out connections it already held open, which the OS had counted "
                "before; here the pool's count is the one that shows the leak",
            )
        )
    if not os_leak:
        return []
    before, after = checked.os_open[0], checked.os_open[1:]
    kept = after[-1] - before
    collected = checked.os_after_collection
    if collected is None:
        then = ""
    elif collected <= before:
        then = (
            f"; once the garbage collector ran, {collected}: they close only when the collector happens to run "
            "(a connection caught in a reference cycle), at moments nobody chooses"
        )
    else:
        then = (
            f"; once the garbage collector ran, still {collected} (one more request was timed meanwhile): "
            "something keeps them, nothing closes them"
        )
    if checked.checked_out:
        report.disagreements.append(
            Finding(
                "the witnesses disagree",
                checked.operation,
                f"the operating system saw {what} climb ({seen}) while the pool gave every connection back "
                f"(checked out {checked_out}): connections opened outside the engine the doctor watches (the "
                "database driver used directly, or another engine)",
            )
        )
    return [
        Finding(
            "connection leak (seen by the OS)",
            checked.operation,
            f"{what} {seen} over {len(after)} requests with the collector off (before, then after each): {kept} "
            f"more open, about {kept / len(after):g} per request{then}",
        )
    ]


def _os_witness(live: _Server, report: Report) -> None:
    """The operating system's count, read once before any request: where it cannot be read, its check is not run."""
    if live.seen_by_os() is None or live.os is None:
        report.not_checked.append(NotRun(_OS_CHECK, live.os_problem, _OS_REMEDY))
        return
    report.os_witness = live.os.what


def checkup(
    target: str, *, app_dir: Path, engine: str | None = None, postgres_url: str | None = None, progress: Any = None
) -> Report:
    """Serve ``target`` (``module:app``) from ``app_dir`` on a SQLite file in a private temp dir (or a
    throwaway database and role on the PostgreSQL server at ``postgres_url``), and exercise every operation
    of its OpenAPI document. ``progress(checked, findings)`` is told of each as it is done."""
    workdir = make_run_dir("doctor")
    backend: Backend = SqliteBackend(workdir) if postgres_url is None else PostgresBackend(postgres_url, "doctor")
    report = Report(target=target, database=backend.name)
    server = LabServer(
        Variant(target, target, app_dir=app_dir, engine=engine),
        workdir=workdir,
        env={"DATABASE_URL": backend.url},
        spare_ok=False,  # the user's app always starts cold, even when it lives in this checkout
    )
    try:
        backend.create()
        try:
            server.start()
        except ServerError as exc:
            raise UsageError(f"your app did not start: {_startup_problem(str(exc), app_dir)}") from None
        live = _Server(server, workdir, backend)
        counters = live.settled()
        live.pool = counters is not None and bool(counters.engine)
        if not live.pool:
            report.not_checked.append(NotRun("connection leaks seen by the pool", *_NO_ENGINE))
        _os_witness(live, report)
        if not isinstance(backend, PostgresBackend):
            report.not_applicable.append(
                NotRun("idle in transaction", "PostgreSQL only", "run with --db postgresql to include it")
            )
        try:
            document = live.client.get("/openapi.json").json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UsageError(f"the app serves no OpenAPI document at /openapi.json ({exc})") from None
        live.errors.read_new()  # start-up's and the document's: not any operation's
        live.harness("gc/disable")
        try:
            pool_size = counters.pool_size if counters is not None else -1
            created = _each_operation(live, report, document, pool_size, progress)
            _exhaustion(live, report, document)
            _statements_per_row(live, report, document, created)
            _stale_connections(live, report, document)
        finally:
            live.harness("gc/enable")
        _pool_budget(live, report, document)
        live.client.close()
        if live.os is None and report.os_witness:  # it could be read at first, and then no more
            report.not_checked.append(NotRun(_OS_CHECK, live.os_problem, _OS_REMEDY))
        return report
    except httpx.HTTPError as exc:
        server.check_alive("during the checkup")
        raise LabError(f"the doctor could not reach your app: {exc}") from exc
    except KeyboardInterrupt:
        report.interrupted = True
        report.not_checked.append(NotRun("the rest of the checkup", "it was interrupted", "run the doctor again"))
        raise CheckupInterrupted(report) from None
    finally:
        with deferred():
            server.stop()
            try:
                backend.drop()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
