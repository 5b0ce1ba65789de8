"""``python run_lab.py doctor MODULE:APP``: the doctor's run, its terminal lines and its reports (its options are
``faultlab.doctor.arguments``)."""

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

__all__ = ["run"]

_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


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
