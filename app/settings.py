"""Where the app's database and pool settings come from (the environment), so a lab can tune them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'todos.db'}"

# Environment variable -> create_engine() keyword, with the type it is parsed as.
_POOL_SETTINGS: dict[str, tuple[str, type]] = {
    "DB_POOL_SIZE": ("pool_size", int),
    "DB_MAX_OVERFLOW": ("max_overflow", int),
    "DB_POOL_TIMEOUT": ("pool_timeout", float),
}
STATEMENT_TIMEOUT_ENV = "DB_STATEMENT_TIMEOUT_MS"
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000  # far above any query of the todo API; 0 means none


def database_url() -> str:
    """``DATABASE_URL``, else ``todos.db`` in the project root (absolute, whatever the cwd)."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def pool_options() -> dict[str, Any]:
    """Only the pool settings that are set, so SQLAlchemy's defaults hold otherwise."""
    options: dict[str, Any] = {}
    for variable, (keyword, kind) in _POOL_SETTINGS.items():
        raw = os.environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            options[keyword] = kind(raw)
        except ValueError:
            raise ValueError(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
    return options


def statement_timeout_ms() -> int:
    """``DB_STATEMENT_TIMEOUT_MS`` (default 30 s): how long PostgreSQL lets one of the app's statements run."""
    raw = os.environ.get(STATEMENT_TIMEOUT_ENV) or str(DEFAULT_STATEMENT_TIMEOUT_MS)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{STATEMENT_TIMEOUT_ENV}={raw!r} is not a valid int") from None
    if value < 0:
        raise ValueError(f"{STATEMENT_TIMEOUT_ENV}={raw!r} must be 0 (no timeout) or more")
    return value


def timeout_connect_args(backend: str, driver: str) -> dict[str, Any]:
    """The statement timeout as each PostgreSQL driver takes it (none for SQLite, nor when it is 0).

    Without one, a slow query holds its pooled connection for as long as it runs, whoever still waits for it
    (``faults/no_statement_timeout.py`` shows what that does to a pool).
    """
    milliseconds = statement_timeout_ms()
    if backend != "postgresql" or milliseconds == 0:
        return {}
    if driver == "asyncpg":
        return {"server_settings": {"statement_timeout": str(milliseconds)}}
    return {"options": f"-c statement_timeout={milliseconds}"}  # libpq's options: psycopg and psycopg2
