"""Which PostgreSQL server a run uses (``--db``), checked before anything starts, and how the lab reaches it;
a URL as a person may see it (``redact``: never a password)."""

from __future__ import annotations

import re
from typing import Any

from faultlab.errors import UsageError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_POSTGRES_URL",
    "admin_connection",
    "database_choice",
    "postgres_admin_url",
    "postgres_problem",
    "redact",
    "require_postgres",
]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 3


def admin_connection(admin_url: str) -> Any:
    """An autocommit connection as the administrator (``CREATE DATABASE`` cannot run in a transaction)."""
    import psycopg
    from sqlalchemy import make_url

    url = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


def postgres_problem(admin_url: str) -> str | None:
    """Why no PostgreSQL server can be used at ``admin_url``, or None when one answers."""
    import psycopg
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(admin_url).set(drivername="postgresql")
    except ArgumentError:
        return f"{redact(admin_url)!r} is not a database URL (expected e.g. {DEFAULT_POSTGRES_URL})"
    try:
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=CONNECT_TIMEOUT_S):
            return None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL server answered at {redact(url.render_as_string(hide_password=True))}: {first}"


# Up to the last "@" of the URL: a password typed with "@" or "/" in it is hidden whole.
_PASSWORD = re.compile(r"(://[^/:@\s]*:)\S*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)  # libpq takes one there too
SHOWN_CHARS = 200


def redact(text: str) -> str:
    """A URL as a person may see it: no password, and not endless."""
    shown = _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", text))
    return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 1] + "…"


def postgres_admin_url(text: str) -> str:
    """``--db``'s PostgreSQL URL, checked: parsable, PostgreSQL, and a driver the lab has (psycopg 3)."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise UsageError(f"--db {redact(text)}: not a database URL ({exc}); e.g. {DEFAULT_POSTGRES_URL}") from None
    shown = redact(url.render_as_string(hide_password=True))
    if "@" in (url.host or ""):  # the server would be asked for a host that holds the rest of the password
        raise UsageError(
            f"--db {redact(text)}: an '@' in the password must be written %40 (postgresql://user:p%40ss@host/db)"
        )
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise UsageError(
            f"--db {shown}: the lab runs on SQLite or PostgreSQL, not {url.get_backend_name()}; "
            f"use sqlite, postgresql, or a URL such as {DEFAULT_POSTGRES_URL}"
        )
    # Read from the URL itself: SQLAlchemy 2 has no "postgres" dialect to ask (NoSuchModuleError).
    _, _, driver = url.drivername.partition("+")
    if driver not in ("", "psycopg"):
        raise UsageError(f"--db {shown}: the lab connects with psycopg 3; write postgresql://... (no +{driver})")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def database_choice(choice: str) -> str | None:
    """``--db``: sqlite (None), postgresql (``FAULTLAB_POSTGRES_URL``, else the default server) or a PostgreSQL
    URL; a PostgreSQL server must answer before anything runs. The environment variable is also how a
    parallel run hands its server to its children: never on a command line, where a password could be read."""
    import os

    if choice == "sqlite":
        return None
    if choice != "postgresql" and "://" not in choice:
        raise UsageError(f"--db {redact(choice)}: use sqlite, postgresql, or a URL such as {DEFAULT_POSTGRES_URL}")
    default = os.environ.get("FAULTLAB_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    url = postgres_admin_url(default if choice == "postgresql" else choice)
    require_postgres(url)
    return url


def require_postgres(admin_url: str) -> None:
    problem = postgres_problem(admin_url)
    if problem:
        raise UsageError(f"{problem}. Start one, or run without --db to use SQLite.")
