"""The database a run starts on: built in the run's temp dir before its server starts.

SQLAlchemy and alembic are imported only when a set-up needs them, so a run without one starts sooner.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["migrate_to_head", "prepare_database"]


# Alembic runs a migration through module-level state (its ``context`` proxy, env.py loaded as a module):
# two runs going at once (faultlab.running.together) take turns.
_ALEMBIC = threading.Lock()


def prepare_database(url: str, migration: str | None, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bring a fresh database to ``migration`` (if any) and insert ``rows`` into its todos as they were then."""
    if migration is None:
        return
    from sqlalchemy import MetaData, Table, create_engine

    from app.migrate import upgrade

    engine = create_engine(url)
    try:
        with _ALEMBIC:
            upgrade(engine, migration)
        if rows:
            with engine.begin() as connection:
                todos = Table("todos", MetaData(), autoload_with=connection)
                connection.execute(todos.insert(), list(rows))
    finally:
        engine.dispose()


def migrate_to_head(url: str) -> str:
    from sqlalchemy import create_engine

    from app.migrate import current_revision, upgrade

    engine = create_engine(url)
    try:
        with _ALEMBIC:
            before = current_revision(engine)
            upgrade(engine, "head")
            return f"alembic upgrade head: {before or 'empty'} → {current_revision(engine)}"
    finally:
        engine.dispose()
