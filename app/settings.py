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
