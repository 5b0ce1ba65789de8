"""The ``doctor`` subcommand's options. Apart from the doctor itself, which imports what a checkup needs (its
checks and report writers, httpx, Jinja, asyncio: some 290 modules, 0.14 s of CPU measured on 2026-12-08), so
that every other command line starts without it."""

from __future__ import annotations

import argparse
from pathlib import Path

from faultlab.plugins.registry import Registry

__all__ = ["add_command"]


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
    parser.set_defaults(command_run=_run)


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


def _run(args: argparse.Namespace, registry: Registry) -> int:
    from faultlab.doctor.command import run

    return run(args, registry)
