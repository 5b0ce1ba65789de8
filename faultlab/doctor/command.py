"""``python run_lab.py doctor MODULE:APP``: the command line of the doctor, and its reports."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from faultlab.backends.base import database_choice
from faultlab.doctor.checkup import OWN_CLUSTER, Project, checkup
from faultlab.doctor.credentials import Credentials, parse_header, parse_login
from faultlab.doctor.html import render_doctor_html, setting
from faultlab.doctor.report import Checked, CheckupInterrupted, Finding, Report, tally
from faultlab.doctor.settings import AppSettings, parse_env
from faultlab.doctor.setup import project_python, shown_command
from faultlab.doctor.verdict import EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_USAGE, NotRun
from faultlab.errors import LabError, UsageError
from faultlab.reports.markdown import code_span, prose

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
    if checked.not_checked:
        mark = f"[yellow]not checked: {escape(checked.not_checked)}[/]"
    statuses = tally(checked.statuses)
    seen = _series("checked out", checked.checked_out) + _series(os_label, checked.os_open)
    idle = _series("idle in transaction", checked.idle_in_transaction)
    console.print(f"  {escape(checked.operation)} {mark} [dim]statuses {statuses}{seen}{idle}[/]")


def _not_run(entry: NotRun) -> str:
    """A check that did not run, why, and what to do, in one Markdown item."""
    todo = f" What you can do: {prose(entry.remedy)}." if entry.remedy else ""
    return f"- **{prose(entry.check)}**: {prose(entry.reason)}.{todo}"


def _markdown(report: Report) -> str:
    lines = [f"# faultlab doctor: {code_span(report.target)}", ""]
    summary = report.summary
    os_count = f" and the operating system's count of {report.os_witness}" if report.os_witness else ""
    lines += [
        f"**{summary[0].upper() + summary[1:]}.** {setting(report)} Each operation was sent a few times with the "
        f"garbage collector off, the pool's checked-out count (where the engine was found){os_count} read before "
        "and after each request.",
        "",
        f"OpenAPI document: {prose(report.openapi)}."
        + (f" Pool budget sent at once: {code_span(report.pool_route)}." if report.pool_route else ""),
        "",
    ]
    lines += [*_served_lines(report), ""]
    for finding in report.findings:
        operations = ", ".join(code_span(operation) for operation in finding.operations)
        where = ""
        if finding.location is not None:
            role = f" ({prose(finding.location.role)})" if finding.location.role else ""
            where = f" At {code_span(str(finding.location))}{role}."
        lines.append(f"- **{prose(finding.kind)}** on {operations}: {prose(finding.evidence)}.{where}")
    if report.disagreements:
        lines += ["", "Where the witnesses disagree:"]
        lines += [f"- {code_span(d.operation)}: {prose(d.evidence)}" for d in report.disagreements]
    os_column = f"{report.os_witness} (OS), before and after each" if report.os_witness else "seen by the OS"
    lines += ["", f"| operation | statuses | checked out, before and after each | {os_column} |", "|---|---|---|---|"]
    for checked in report.checked:
        series = "→".join(map(str, checked.checked_out)) or "n/a"
        seen = "→".join(map(str, checked.os_open)) or "n/a"
        statuses = tally(checked.statuses) + (" (not checked)" if checked.not_checked else "")
        lines.append(f"| {code_span(checked.operation, in_table=True)} | {statuses} | {series} | {seen} |")
    if report.not_checked:
        lines += ["", 'Did not run (without them the verdict cannot be "nothing found"):']
        lines += [_not_run(entry) for entry in report.not_checked]
    if report.not_applicable:
        lines += ["", "Not applicable to this run:", *[_not_run(entry) for entry in report.not_applicable]]
    return "\n".join(lines) + "\n"


def _served_lines(report: Report) -> list[str]:
    """Which app was served, by which interpreter, on which database, with what: names only, never a value."""
    where = (
        "its configured database, as asked with `--use-configured-db`" if report.configured_db else "the throwaway one"
    )
    engine = f"{code_span(report.engine_url)} ({where})" if report.engine_url else "no SQLAlchemy engine found"
    lines = [
        f"- App loaded from {code_span(report.app_file) if report.app_file else 'an unknown file'}, "
        f"served by {code_span(report.python)}",
        f"- Its engine's database: {engine}",
    ]
    if report.settings:
        lines.append(f"- Settings given (values not shown): {', '.join(code_span(n) for n in report.settings)}")
    lines += [f"- Credentials: {prose(given)}" for given in report.credentials]
    lines += [f"- Set-up, before the app started: {code_span(command)}" for command in report.setup]
    return lines


def _write(report: Report, out: Path) -> Path:
    name = re.sub(r"[^\w.-]", "-", report.target)
    target = out / f"doctor-{name}"
    target.mkdir(parents=True, exist_ok=True)
    (target / "report.md").write_text(_markdown(report), encoding="utf-8")
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


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json, highlight=False)
    errors = Console(stderr=True, highlight=False)
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
        return _failed(errors, EXIT_USAGE, str(exc), args.json)
    except CheckupInterrupted as interrupted:
        errors.print("[yellow]interrupted[/]: what was found so far is reported")
        _finish(interrupted.report, args, console, errors)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return _failed(errors, EXIT_INTERRUPTED, "interrupted", args.json)
    except LabError as exc:
        return _failed(errors, EXIT_FINDINGS, str(exc), args.json)
    return _finish(report, args, console, errors)


def _finish(report: Report, args: argparse.Namespace, console: Console, errors: Console) -> int:
    """The findings, the verdict and the reports (Markdown, JSON, HTML); the exit code they make."""
    for finding in report.findings:
        where = f"[bold red]{escape(finding.kind)}[/] on {escape(', '.join(finding.operations))}"
        console.print(f"  {where}: {escape(finding.evidence)}")
        if finding.location is not None:
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
