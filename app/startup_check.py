"""Before ``python -m app`` says it is ready: can the database be used? One line for each way it cannot.

Run before the app is imported (importing it builds the engine) and before the banner. It migrates the
database to head, as the app's start-up would, so what would fail there fails here, in words. A file that
cannot be used is left as it was: a missing directory is not created, a corrupt or newer file is not written.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from app import settings
from app.migrate import upgrade

__all__ = ["database_problem"]

ELSEWHERE = "or point --db (DATABASE_URL) at another database"


def _sqlite_problem(path: Path, exc: BaseException) -> str:
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    if "file is not a database" in reason:
        return f"{path} is not a SQLite database ({reason}); move it away, {ELSEWHERE}"
    if "readonly" in reason or "read-only" in reason:
        return f"{path} cannot be written ({reason}); make it writable, {ELSEWHERE}"
    return f"cannot open or create {path} ({reason}); check that its directory is writable, {ELSEWHERE}"


def _read_only(path: Path) -> str | None:
    """A file the app can read but not write passes the migrations and fails at the first write. SQLite writes
    its journal beside the file, so the directory must be writable too; ``os.access`` also sees a read-only
    file system (a read-only checkout), which stops root as well."""
    if not path.is_file():
        return None
    if not os.access(path, os.W_OK):
        return f"{path} cannot be written (the file is read-only); make it writable, {ELSEWHERE}"
    if not os.access(path.parent, os.W_OK):
        return (
            f"{path} cannot be written (its directory is read-only, and SQLite writes its journal there); "
            f"make the directory writable, {ELSEWHERE}"
        )
    return None


def database_problem() -> str | None:
    """What stops the app from using its database, in one line with what to do; None when all is well."""
    text = settings.database_url()
    try:
        url: URL = make_url(text)
    except (ArgumentError, ValueError) as exc:
        return f"DATABASE_URL is not a database URL ({exc}); e.g. sqlite:///todos.db"
    shown = url.render_as_string(hide_password=True)
    try:
        settings.pool_options()
    except ValueError as exc:
        return f"{exc}; set it to a number, or unset it for SQLAlchemy's default"
    try:
        settings.statement_timeout_ms()
    except ValueError as exc:
        return f"{exc}; set it in milliseconds (0: none), or unset it for the default 30 s"
    sqlite_file = (
        Path(url.database)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        else None
    )
    if sqlite_file is not None and not sqlite_file.parent.is_dir():
        return f"the directory of {sqlite_file} does not exist; create it, {ELSEWHERE}"
    if sqlite_file is not None and (problem := _read_only(sqlite_file)):
        return problem
    try:
        engine = create_engine(url, poolclass=NullPool)
    except (ArgumentError, ImportError, ValueError, TypeError) as exc:
        return f"cannot use {shown}: {exc}"
    try:
        upgrade(engine, "head")
    except DBAPIError as exc:
        if sqlite_file is not None or isinstance(exc.orig, sqlite3.Error):
            return _sqlite_problem(sqlite_file or Path(str(url.database)), exc)
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        return f"cannot use the database at {shown}: {first}; start it, {ELSEWHERE}"
    except SQLAlchemyError as exc:
        return f"cannot use the database at {shown}: {str(exc).strip().splitlines()[0]}"
    except Exception as exc:  # alembic's CommandError and the like: the message says what it could not do
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Can't locate revision" in message:
            return f"{shown} was migrated by a newer version of this app ({message}); run that version, {ELSEWHERE}"
        return f"cannot migrate {shown}: {message}"
    finally:
        engine.dispose()
    return None
