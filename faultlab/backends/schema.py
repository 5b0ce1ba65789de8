"""The database a run starts on: built in the run's temp dir before its server starts.

SQLAlchemy and alembic are imported only when a set-up needs them, so a run without one starts sooner.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from faultlab.errors import LabError
from faultlab.variants import PROJECT_ROOT

__all__ = ["migrate_to_head", "prepare_database"]


# Alembic runs a migration through module-level state (its ``context`` proxy, env.py loaded as a module):
# two runs going at once (faultlab.running.together) take turns.
_ALEMBIC = threading.Lock()


def prepare_database(url: str, migration: str | None, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bring a fresh database to ``migration`` (if any) and insert ``rows`` into its todos as they were then."""
    if migration is None:
        return
    from sqlalchemy import MetaData, Table, create_engine

    engine = create_engine(url)
    try:
        with _ALEMBIC:
            _example_migrations().upgrade(engine, migration)
        if rows:
            with engine.begin() as connection:
                todos = Table("todos", MetaData(), autoload_with=connection)
                connection.execute(todos.insert(), list(rows))
    finally:
        engine.dispose()


def migrate_to_head(url: str) -> str:
    from sqlalchemy import create_engine

    migrations = _example_migrations()
    engine = create_engine(url)
    try:
        with _ALEMBIC:
            before = migrations.current_revision(engine)
            migrations.upgrade(engine, "head")
            return f"alembic upgrade head: {before or 'empty'} → {migrations.current_revision(engine)}"
    finally:
        engine.dispose()


def _example_migrations() -> ModuleType:
    """The example app's ``app.migrate``, from the lab's example (a checkout's top, or faultlab/example once
    installed), and never a package named ``app`` that happens to be first on this process's path."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    module = importlib.import_module("app.migrate")
    where = Path(module.__file__ or "").resolve()
    if not where.is_relative_to(PROJECT_ROOT):
        raise LabError(
            f"the lab's example app is shadowed by {where.parent}, another package named app on this Python's path; "
            "run the lab from another directory"
        )
    return module
