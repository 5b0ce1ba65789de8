"""``python run_lab.py doctor MODULE:APP``: the command line of the doctor, and its reports."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from faultlab.backends.base import database_choice
from faultlab.doctor.checkup import Project, checkup
from faultlab.doctor.credentials import Credentials, parse_header, parse_login
from faultlab.doctor.html import render_doctor_html
from faultlab.doctor.markdown import render_doctor_markdown
from faultlab.doctor.report import Checked, CheckupInterrupted, Finding, Report, tally
from faultlab.doctor.secrets import Secrets
from faultlab.doctor.settings import AppSettings, parse_env
from faultlab.doctor.setup import project_python, shown_command
from faultlab.doctor.store import OWN_CLUSTER
from faultlab.doctor.verdict import EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_USAGE
from faultlab.errors import LabError, UsageError
from faultlab.plugins.registry import Registry

__all__ = ["add_command", "run"]

_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``doctor``, a subcommand of the lab's command line (``faultlab.cli``)."""
    parser = commands.add_parser(
        "doctor",
        help="the lab's witnesses on your own app: leaks, idle transactions, a blocked loop, N+1, the pool",
        description="Serve your FastAPI + SQLAlchemy app on a real server (a SQLite file in a temp dir, or a "
        "throwaway PostgreSQL database) and look, operation by operation, for connection leaks, sessions idle "
        "in transaction, a blocked event loop, N+1 statements, stale pooled connections and the pool's budget.",
        epilog="Exit codes: 0 nothing found (every check that applies ran), 1 findings, 2 usage error (or your app "
        "did not start), 3 incomplete (nothing found, but a check that applies could not run), 130 interrupted.",
    )
    parser.add_argument("target", metavar="MODULE:APP", help="your ASGI app, e.g. myproject.main:app")
    parser.add_argument("--app-dir", type=Path, default=Path("."), metavar="DIR", help="where MODULE is imported from")
    parser.add_argument("--engine", metavar="MODULE:ENGINE", help="your engine, if the doctor cannot find it")
    parser.add_argument(
        "--db",
        default="sqlite",
        metavar="BACKEND",
        help="sqlite (default), postgresql[://URL]: a throwaway database and role on that server, or own-cluster: "
        "a PostgreSQL server of the doctor's own (initdb, on a free loopback port, removed after), which the database "
        "restart check restarts; yours is never restarted",
    )
    parser.add_argument(
        "--compare-db",
        metavar="URL",
        help="also compare your models with the tables of this database (read-only; alembic's comparison)",
    )
    parser.add_argument(
        "--openapi",
        metavar="PATH_OR_URL_PATH",
        help="your app's OpenAPI document, if the doctor cannot find it from your app's openapi_url: a JSON or "
        "YAML file, or the URL path your app serves it at (e.g. /api/v1/openapi.json)",
    )
    _project_options(parser)
    parser.add_argument("--out", type=Path, default=Path("lab-reports"), metavar="DIR", help="report directory")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(command_run=run)


def _project_options(parser: argparse.ArgumentParser) -> None:
    """How to run a project as at home: its settings pointed at the throwaway database, its interpreter, its
    credentials, its set-up commands (``faultlab.doctor.settings``, ``setup``, ``credentials``)."""
    group = parser.add_argument_group("your project's settings, interpreter, credentials and set-up")
    group.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for the app and --setup (repeatable); placeholders name the throwaway database's parts: "
        "{db.url} {db.host} {db.port} {db.user} {db.password} {db.name} {db.driver}, e.g. --env POSTGRES_DB={db.name}",
    )
    group.add_argument(
        "--db-env",
        action="append",
        default=[],
        metavar="NAME",
        help="the variable your app reads its database URL from (repeatable; DATABASE_URL is always set)",
    )
    group.add_argument(
        "--use-configured-db",
        action="store_true",
        help="let the app use the database it is configured with, instead of stopping (the doctor writes rows there)",
    )
    group.add_argument(
        "--python",
        type=Path,
        metavar="PATH",
        help="the project's interpreter (default: .venv/bin/python in --app-dir or the dir above it, if any)",
    )
    group.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="sent with every request (repeatable), e.g. 'Authorization: Bearer TOKEN'; never shown",
    )
    group.add_argument(
        "--login",
        metavar="'METHOD /PATH form:NAME=VALUE,...'",
        help="sent once the app answers; its JSON access_token becomes a bearer token, e.g. 'POST "
        "/api/v1/login/access-token form:username=me@example.com,password=...' (or json:); values never shown",
    )
    group.add_argument(
        "--setup",
        action="append",
        default=[],
        metavar="COMMAND",
        help="run in --app-dir before the app starts, against the throwaway database, with the app's settings "
        "(repeatable, in order), e.g. 'alembic upgrade head'",
    )


def _project(args: argparse.Namespace, app_dir: Path) -> Project:
    """The project's options, checked before anything starts."""
    settings = AppSettings(parse_env(args.env), list(args.db_env), args.use_configured_db)
    credentials = Credentials([parse_header(h) for h in args.header], parse_login(args.login) if args.login else None)
    return Project(project_python(app_dir, args.python), settings, credentials, list(args.setup))


def _served(console: Console, report: Report) -> None:
    """Which app answered and where its data goes, before any operation is sent."""
    console.print(f"  app: {escape(report.app_file or '(its file is unknown)')} · python: {escape(report.python)}")
    where = "its configured database, as asked (--use-configured-db)" if report.configured_db else "the throwaway one"
    engine = escape(report.engine_url) if report.engine_url else "no SQLAlchemy engine found"
    console.print(f"  database: {engine} ({where})" if report.engine_url else f"  database: {engine}")
    for given in report.credentials:
        console.print(f"  credentials: {escape(given)}")


def _series(label: str, values: list[int]) -> str:
    return f" · {label} {'→'.join(map(str, values))}" if values else ""


def _line(console: Console, checked: Checked, findings: list[Finding], os_label: str) -> None:
    found = sorted({f.kind for f in findings if checked.operation in f.operations})
    mark = f"[bold red]✗ {escape(', '.join(found))}[/]" if found else "[green]✓[/]"
    if not found and checked.statuses and all(400 <= status < 500 for status in checked.statuses):
        # Refused every time (a login with the doctor's made-up values, an id that is not there): nothing wrong
        # was seen, but the route's own work may never have run, so no tick.
        mark = "[yellow]~ refused every time (4xx): its work past the checks may not have run[/]"
    if checked.not_checked:
        mark = f"[yellow]not checked: {escape(checked.not_checked)}[/]"
    statuses = tally(checked.statuses)
    seen = _series("checked out", checked.checked_out) + _series(os_label, checked.os_open)
    idle = _series("idle in transaction", checked.idle_in_transaction)
    console.print(f"  {escape(checked.operation)} {mark} [dim]statuses {statuses}{seen}{idle}[/]")


def _write(report: Report, out: Path) -> Path:
    name = re.sub(r"[^\w.-]", "-", report.target)
    target = out / f"doctor-{name}"
    target.mkdir(parents=True, exist_ok=True)
    (target / "report.md").write_text(render_doctor_markdown(report), encoding="utf-8")
    (target / "journal.json").write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
    (target / "report.html").write_text(render_doctor_html(report), encoding="utf-8")
    return target / "report.md"


def _compare_url(text: str) -> None:
    """``--compare-db`` is read before the checkup, so that a mistyped URL costs nothing."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from faultlab.backends.base import redact

    try:
        backend = make_url(text).get_backend_name()
    except (ArgumentError, ValueError):
        backend = ""
    if backend not in ("sqlite", "postgresql", "postgres"):
        raise UsageError(
            f"--compare-db {redact(text)}: give a SQLite or PostgreSQL URL, e.g. sqlite:////path/to/todos.db"
        )


def _failed(errors: Console, code: int, message: str, as_json: bool) -> int:
    """A checkup that ended before its report: the reason on stderr, and on stdout too for --json's readers."""
    if message == "interrupted":
        errors.print("[yellow]interrupted[/]")
    else:
        errors.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    if as_json:
        verdict = {int(EXIT_USAGE): "usage error", int(EXIT_INTERRUPTED): "interrupted"}.get(code, "error")
        print(json.dumps({"verdict": verdict, "exit_code": code, "error": message}, indent=2))
    return code


def run(args: argparse.Namespace, registry: Registry) -> int:
    console = Console(stderr=args.json, highlight=False)
    errors = Console(stderr=True, highlight=False)
    project: Project | None = None

    def masked(text: str) -> str:
        """The secrets the user gave (settings, headers, the login, its token) never printed back."""
        return Secrets.given(project).mask(text)

    try:
        if not _TARGET.match(args.target):
            raise UsageError(f"{args.target!r}: name your app as MODULE:ATTRIBUTE, e.g. myproject.main:app")
        if not args.app_dir.is_dir():
            raise UsageError(f"--app-dir {args.app_dir}: not a directory")
        own_cluster = args.db == OWN_CLUSTER
        postgres_url = None if own_cluster else database_choice(args.db)
        if args.compare_db:
            _compare_url(args.compare_db)
        project = _project(args, args.app_dir.resolve())
        console.print(f"doctor: serving [bold]{escape(args.target)}[/] from {escape(str(args.app_dir.resolve()))}")
        for command in project.setup:
            console.print(f"  setup: {escape(shown_command(command))}")
        report = checkup(
            registry,
            args.target,
            app_dir=args.app_dir.resolve(),
            engine=args.engine,
            postgres_url=postgres_url,
            compare_db=args.compare_db,
            openapi=args.openapi,
            progress=lambda checked, findings: _line(console, checked, findings, _os_label(args.db)),
            project=project,
            served=lambda report: _served(console, report),
            own_cluster=own_cluster,
        )
    except UsageError as exc:
        return _failed(errors, EXIT_USAGE, masked(str(exc)), args.json)
    except CheckupInterrupted as interrupted:
        errors.print("[yellow]interrupted[/]: what was found so far is reported")
        _finish(_masked_report(interrupted.report, project), args, console, errors)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return _failed(errors, EXIT_INTERRUPTED, "interrupted", args.json)
    except LabError as exc:
        return _failed(errors, EXIT_FINDINGS, masked(str(exc)), args.json)
    return _finish(_masked_report(report, project), args, console, errors)


def _masked_report(report: Report, project: Project | None) -> Report:
    """What the app said (exceptions, log lines) may repeat a secret it was given: masked before it is shown."""
    return Secrets.given(project).mask_all(report)


def _finish(report: Report, args: argparse.Namespace, console: Console, errors: Console) -> int:
    """The findings, the verdict and the reports (Markdown, JSON, HTML); the exit code they make."""
    for finding in report.findings:
        where = f"[bold red]{escape(finding.kind)}[/] on {escape(', '.join(finding.operations))}"
        console.print(f"  {where}: {escape(finding.evidence)}")
        if finding.where:
            console.print(f"    [bold]{escape(finding.where)}[/]")
    for disagreement in report.disagreements:
        console.print(
            f"  [yellow]the witnesses disagree[/] on {escape(disagreement.operation)}: {escape(disagreement.evidence)}"
        )
    if report.pool_route:
        console.print(f"  [dim]pool budget sent at once: {escape(report.pool_route)}[/]")
    for entry in report.not_checked:
        todo = f"; what you can do: {escape(entry.remedy)}" if entry.remedy else ""
        console.print(f"  [yellow]did not run:[/] {escape(entry.check)}: {escape(entry.reason)}{todo}")
    for entry in report.not_applicable:
        console.print(f"  [dim]not applicable: {escape(str(entry))}[/]")
    colour = {"findings": "bold red", "nothing found": "bold green"}.get(report.verdict, "bold yellow")
    console.print(f"  verdict: [{colour}]{escape(report.summary)}[/] (exit {report.exit_code})")
    try:
        written = _write(report, args.out)
        console.print(f"  report: {escape(str(written))}")
        console.print(f"  html: {escape(str(written.with_name('report.html')))}")
    except OSError as exc:
        errors.print(f"[yellow]could not write the report in {escape(str(args.out))}: {escape(str(exc))}[/]")
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    return report.exit_code


def _os_label(db: str) -> str:
    """The OS's count in a progress line: descriptors on the SQLite files, or sockets to PostgreSQL."""
    return "db fds" if db == "sqlite" else "tcp"
