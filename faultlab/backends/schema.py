"""The database a run starts on: built in the run's temp dir before its server starts.

SQLAlchemy and alembic are imported only when a set-up needs them, so a run without one starts sooner.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
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
        with _ALEMBIC, _example_migrations() as migrations:
            migrations.upgrade(engine, migration)
        if rows:
            with engine.begin() as connection:
                todos = Table("todos", MetaData(), autoload_with=connection)
                connection.execute(todos.insert(), list(rows))
    finally:
        engine.dispose()


def migrate_to_head(url: str) -> str:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with _ALEMBIC, _example_migrations() as migrations:
            before = migrations.current_revision(engine)
            migrations.upgrade(engine, "head")
            return f"alembic upgrade head: {before or 'empty'} → {migrations.current_revision(engine)}"
    finally:
        engine.dispose()


@contextlib.contextmanager
def _example_migrations() -> Iterator[ModuleType]:
    """The example app's ``app.migrate``, from the lab's example (a checkout's top, or faultlab/example once
    installed), and never a package named ``app`` that happens to be first on this process's path.

    Imported for the block only: the ``app`` modules it brings and its path entry go when the block ends, so the
    lab's process never keeps an ``app`` that a later import (a user's app, the doctor's) would get instead."""
    before = {name for name in sys.modules if _is_app(name)}
    added_path = str(PROJECT_ROOT) not in sys.path
    if added_path:
        sys.path.insert(0, str(PROJECT_ROOT))
    try:
        module = importlib.import_module("app.migrate")
        where = Path(module.__file__ or "").resolve()
        if not where.is_relative_to(PROJECT_ROOT):
            raise LabError(
                f"the lab's example app is shadowed by {where.parent}, another package named app on this Python's "
                "path; run the lab from another directory"
            )
        yield module
    finally:
        for name in [name for name in sys.modules if _is_app(name) and name not in before]:
            del sys.modules[name]
        if added_path:
            sys.path.remove(str(PROJECT_ROOT))


def _is_app(module_name: str) -> bool:
    return module_name == "app" or module_name.startswith("app.")
