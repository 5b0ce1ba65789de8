"""Serve a user's app under the lab's harness on a real server and run the doctor's checks on it, operation
by operation: start the server, exercise each operation of its OpenAPI document (``faultlab.doctor.exercise``),
call the registered checks' hooks in order (``faultlab.doctor.checks``, ``faultlab.doctor.contract``), stop.

The garbage collector is switched off while the operations are exercised (as missing-yield does), so a
session that is never closed shows as a connection that stays checked out, every time, instead of when the
collector happens not to run. Bounded: a few requests per operation, loopback only, a deadline per request.
A check that cannot run on the app is recorded with why and what to do (``faultlab.doctor.verdict``).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from faultlab.backends.base import Backend, PostgresBackend, SqliteBackend
from faultlab.doctor.checks import checks
from faultlab.doctor.contract import Check, CheckupContext
from faultlab.doctor.document import load_document
from faultlab.doctor.exercise import exercise, probe_baseline
from faultlab.doctor.find_ids import find_id, no_id
from faultlab.doctor.live import Live
from faultlab.doctor.openapi import Operation, plan
from faultlab.doctor.report import Checked, CheckupInterrupted, Finding, NotRun, Report, tally
from faultlab.doctor.values import Values
from faultlab.errors import LabError, ServerError, UsageError
from faultlab.inside import wire
from faultlab.interrupts import deferred
from faultlab.plugins import registry
from faultlab.plugins.context import RunContext
from faultlab.running.orchestrate import make_run_dir
from faultlab.server.launch import LabServer
from faultlab.variants import Variant

__all__ = ["Checked", "CheckupInterrupted", "Finding", "NotRun", "Report", "checkup", "tally"]

Progress = Callable[[Checked, list[Finding]], object]
_SHOWN = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _applying(every: list[Check], backend: str, report: Report, options: dict[str, str] | None = None) -> list[Check]:
    """The checks that apply on this backend, with the options given; the other database's listed as not
    applicable, once per name."""
    every = [check for check in every if all(option in (options or {}) for option in check.needs)]
    listed: set[str] = set()
    for check in every:
        if backend in check.backends or check.name in listed:
            continue
        listed.add(check.name)
        only = " and ".join(_SHOWN.get(name, name) for name in sorted(check.backends))
        remedy = " or ".join(f"--db {name}" for name in sorted(check.backends))
        report.not_applicable.append(NotRun(check.name, f"{only} only", f"run with {remedy} to include it"))
    return [check for check in every if backend in check.backends]


def _visit(ctx: CheckupContext, applying: list[Check], operation: Operation, progress: Progress | None) -> None:
    """One operation, from what a collection leaves: exercised, then judged by every check in turn; or listed as
    not checked, with why."""
    problem = operation.unsendable or (ctx.live.values.problems.get(operation.label, "") if ctx.live.values else "")
    if problem:
        ctx.report.not_checked.append(
            NotRun(f"every check on {operation.label}", problem, "check this operation yourself")
        )
        return
    item_id = None
    if operation.path_params:
        found = find_id(ctx, operation)
        if found is None:
            ctx.report.not_checked.append(NotRun(f"every check on {operation.label}", *no_id(ctx, operation)))
            return
        item_id = found.value
    exercised = exercise(ctx, operation, item_id)
    found_here: list[Finding] = []
    for check in applying:
        found_here += check.operation(ctx, exercised, found_here)
    ctx.report.findings += found_here
    if progress:
        progress(exercised.checked, ctx.report.findings)


def _run_checks(
    live: Live,
    report: Report,
    every: list[Check],
    progress: Progress | None,
    *,
    target: str,
    app_dir: Path,
    options: dict[str, str],
    openapi: str | None,
) -> None:
    """Every hook of every check that applies, in order: start, each operation and after them (the collector
    off), end (the collector back on)."""
    document = load_document(live.client, openapi)
    live.values = Values(document.raw, document.operations)
    report.openapi = document.source
    report.probe_baseline_ms = live.probe_baseline_ms = probe_baseline(live)
    ctx = CheckupContext(live, report, document.raw, plan(document.operations), target, app_dir, options)
    applying = _applying(every, live.backend.name, report, ctx.options)
    for check in applying:
        check.start(ctx)
    live.errors.read_new()  # start-up's and the document's: not any operation's
    live.harness("gc/disable")
    try:
        for operation in ctx.plan:
            _visit(ctx, applying, operation, progress)
        for check in applying:
            check.after_operations(ctx)
    finally:
        live.harness("gc/enable")
    for check in applying:
        check.end(ctx)


def checkup(
    target: str,
    *,
    app_dir: Path,
    engine: str | None = None,
    postgres_url: str | None = None,
    compare_db: str | None = None,
    openapi: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Serve ``target`` (``module:app``) from ``app_dir`` on a SQLite file in a private temp dir (or a
    throwaway database and role on the PostgreSQL server at ``postgres_url``), and exercise every operation
    of its OpenAPI document (the app's own, or ``openapi``: a file or a URL path); with ``compare_db``,
    compare the app's models with that database's tables too.
    ``progress(checked, findings)`` is told of each operation as it is done."""
    every = checks()  # a check that does not keep the contract is refused before anything starts
    workdir = make_run_dir("doctor")
    backend: Backend = SqliteBackend(workdir) if postgres_url is None else PostgresBackend(postgres_url, "doctor")
    report = Report(target=target, database=backend.name)
    server = LabServer(
        Variant(target, target, app_dir=app_dir, engine=engine),
        workdir=workdir,
        # The collector's routes: the checks switch it off, and collect, to see a leak as it is.
        env={"DATABASE_URL": backend.url, wire.INSIDE_ENV: registry.inside_parts([], ["gc_collect", "gc_disable"])},
        spare_ok=False,  # the user's app always starts cold, even when it lives in this checkout
    )
    try:
        backend.create()
        try:
            server.start()
        except ServerError as exc:
            raise UsageError(f"your app did not start: {_startup_problem(str(exc), app_dir)}") from None
        # The catalogue's witnesses take a run's context; the doctor's run is one "fault" run of the user's app.
        live = Live(RunContext("fault", workdir, backend, server))
        try:
            counters = live.settled()
            live.pool = counters is not None and bool(counters.engine)
            live.pool_size = counters.pool_size if counters is not None else -1
            options = {"compare_db": compare_db} if compare_db else {}
            _run_checks(
                live, report, every, progress, target=target, app_dir=app_dir, options=options, openapi=openapi
            )
        finally:
            live.client.close()
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
