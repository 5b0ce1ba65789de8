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
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from faultlab.backends.base import Backend
from faultlab.doctor.checks import checks
from faultlab.doctor.contract import Check, CheckupContext
from faultlab.doctor.credentials import LOGIN_EXAMPLE, Credentials
from faultlab.doctor.document import load_document
from faultlab.doctor.exercise import exercise, probe_baseline
from faultlab.doctor.find_ids import find_id, no_id
from faultlab.doctor.identity import AppIdentity, only_db, refused_database, require_throwaway
from faultlab.doctor.live import Live
from faultlab.doctor.openapi import Operation, plan
from faultlab.doctor.report import Checked, CheckupInterrupted, Finding, NotRun, Report, tally
from faultlab.doctor.settings import AppSettings
from faultlab.doctor.setup import identify, run_setup, shown_command
from faultlab.doctor.store import require_cluster, start_cluster, throwaway
from faultlab.doctor.values import Values
from faultlab.errors import LabError, ServerError, UsageError
from faultlab.inside import wire
from faultlab.interrupts import deferred
from faultlab.plugins.context import RunContext
from faultlab.plugins.registry import Registry
from faultlab.running.orchestrate import make_run_dir
from faultlab.server.launch import LabServer
from faultlab.variants import Variant

__all__ = ["Checked", "CheckupInterrupted", "Finding", "NotRun", "Project", "Report", "checkup", "tally"]

Progress = Callable[[Checked, list[Finding]], object]
_SHOWN = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_DENIED = {401: "401 Unauthorized", 403: "403 Forbidden"}
NO_CREDENTIALS = f"give credentials: --header 'Authorization: Bearer TOKEN', or {LOGIN_EXAMPLE}"


@dataclass
class Project:
    """What the user's project needs to run as it does at home: its interpreter, its settings pointed at the
    throwaway database, its credentials and its set-up commands."""

    python: Path | None = None  # the project's own interpreter; None: the doctor's
    settings: AppSettings = field(default_factory=AppSettings)
    credentials: Credentials = field(default_factory=Credentials)
    setup: list[str] = field(default_factory=list)
    # The settings as the app got them (placeholders filled in), once the throwaway database exists: what the
    # doctor masks in what the app says back (``faultlab.doctor.secrets``). Never written to a report.
    given_env: dict[str, str] = field(default_factory=dict, repr=False)


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
    if refused := _refused(exercised.checked.statuses):
        # A 401 is the app refusing the doctor, a 422 its request, not a sign of health: nothing about its
        # database was seen.
        reason, remedy = refused
        exercised.checked.not_checked = reason
        ctx.report.not_checked.append(NotRun(f"every check on {operation.label}", reason, remedy))
        if progress:
            progress(exercised.checked, ctx.report.findings)
        return
    found_here: list[Finding] = []
    for check in applying:
        found_here += check.operation(ctx, exercised, found_here)
    ctx.report.findings += found_here
    if progress:
        progress(exercised.checked, ctx.report.findings)


def _refused(statuses: list[int]) -> tuple[str, str] | None:
    """Why, and what to do, when every answer refused the doctor (its credentials, or the request it made)."""
    if not statuses or len(set(statuses)) != 1:
        return None
    if statuses[0] in _DENIED:
        return f"it answered {_DENIED[statuses[0]]} every time", NO_CREDENTIALS
    if statuses[0] == 422:
        return "it answered 422 Unprocessable Content every time: it refused the request made from its schema", (
            "make the OpenAPI document say what the route accepts (or give --openapi), or check it yourself"
        )
    return None


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
    registry: Registry,
    target: str,
    *,
    app_dir: Path,
    engine: str | None = None,
    postgres_url: str | None = None,
    compare_db: str | None = None,
    openapi: str | None = None,
    progress: Progress | None = None,
    project: Project | None = None,
    served: Callable[[Report], object] | None = None,
    own_cluster: bool = False,
) -> Report:
    """Serve ``target`` (``module:app``) from ``app_dir`` on a SQLite file in a private temp dir (or a
    throwaway database and role on the PostgreSQL server at ``postgres_url``, or with ``own_cluster`` on a server of
    the checkup's own, which the "database restart" check may restart), and exercise every operation
    of its OpenAPI document (the app's own, or ``openapi``: a file or a URL path); with ``compare_db``,
    compare the app's models with that database's tables too. ``project`` says how to run it as at home
    (interpreter, settings, credentials, set-up commands); unless its settings ask for the configured database,
    nothing is sent to an app whose engine is on another database. ``served(report)`` is told once the app
    answers (its file, its engine's URL), ``progress(checked, findings)`` of each operation as it is done.
    ``registry`` holds the actions whose parts inside the server the checks use (the garbage collector's)."""
    every = checks()  # a check that does not keep the contract is refused before anything starts
    project = project or Project()
    if own_cluster:
        require_cluster()
    workdir = make_run_dir("doctor")
    cluster = start_cluster(workdir) if own_cluster else None  # a server of the checkup's own, that it may restart
    try:  # until the server exists, the clean-up below cannot run: this one leaves nothing either
        backend: Backend = throwaway(workdir, postgres_url, cluster)
        report = Report(target=target, database=backend.name)
        report.python = str(project.python or sys.executable)
        report.settings, report.configured_db = project.settings.names(), project.settings.use_configured_db
        report.setup = [shown_command(command) for command in project.setup]
        env = {"DATABASE_URL": backend.url, **project.settings.environment(backend.url)}
        project.given_env = dict(env)
        # The collector's routes: the checks switch it off, and collect, to see a leak as it is; and the parts of the
        # checks that apply here.
        parts = [registry.inside_parts([], ["gc_collect", "gc_disable"])]
        parts += [check.inside for check in every if check.inside and backend.name in check.backends]
        env[wire.INSIDE_ENV] = ",".join(dict.fromkeys(filter(None, parts)))
        env[wire.SITES_ENV] = "1"  # where each leak and lazy load came from, for the findings
        if not project.settings.use_configured_db:
            env[wire.ONLY_DB_ENV] = only_db(backend.url)  # the harness refuses SQLAlchemy any other database
        server = LabServer(
            Variant(target, target, app_dir=app_dir, engine=engine),
            workdir=workdir,
            env=env,
            warm=False,  # the user's app always starts cold, even when it lives in this checkout
            isolated=True,  # the app's dir first, then the harness alone: never this checkout's own `app`
            python=str(project.python) if project.python else None,
        )
    except BaseException:
        with deferred():
            if cluster is not None:
                cluster.remove()
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        backend.create()
        if project.setup:
            _set_up(target, project, app_dir=app_dir, engine=engine, env=env, url=backend.url, workdir=workdir)
        try:
            server.start()
        except ServerError as exc:
            wrong = refused_database(str(exc), backend.url)
            raise wrong or UsageError(f"your app did not start: {_startup_problem(str(exc), app_dir)}") from None
        # The catalogue's witnesses take a run's context; the doctor's run is one "fault" run of the user's app.
        live = Live(RunContext("fault", workdir, backend, server))
        try:
            identity = AppIdentity.from_json(live.client.get(wire.PROBE_PREFIX + "ready").json())
            report.app_file, report.engine_url = identity.app_file, identity.engine_url
            report.python = identity.python or report.python
            if not project.settings.use_configured_db:
                require_throwaway(identity, backend.url)  # before any request to the app itself
            project.credentials.log_in(live.client)
            live.authorize(project.credentials.sent())
            report.credentials = project.credentials.shown()
            if served:
                served(report)
            counters = live.settled()
            live.pool = counters is not None and bool(counters.engine)
            live.pool_size = counters.pool_size if counters is not None else -1
            options = {"compare_db": compare_db} if compare_db else {}
            _run_checks(live, report, every, progress, target=target, app_dir=app_dir, options=options, openapi=openapi)
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
                if cluster is not None:
                    cluster.remove()
                shutil.rmtree(workdir, ignore_errors=True)


def _set_up(
    target: str, project: Project, *, app_dir: Path, engine: str | None, env: dict[str, str], url: str, workdir: Path
) -> None:
    """The set-up commands, once the app's import has shown that its settings lead to the throwaway database (set-up
    commands read the same settings; the harness's guard does not reach into them)."""
    identity, problem = identify(
        target, app_dir=app_dir, engine=engine, env=env, python=project.python, workdir=workdir
    )
    if identity is None:
        raise refused_database(problem, url) or UsageError(
            f"your app could not be imported: {_startup_problem(problem, app_dir)}"
        )
    if not project.settings.use_configured_db:
        require_throwaway(identity, url)
    run_setup(project.setup, app_dir=app_dir, env=env, python=project.python, log=workdir / "setup.log")


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
