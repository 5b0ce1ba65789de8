"""Shared fixtures. Every database a test touches lives under a temp dir, never in the project."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

# Set before anything imports `app`, so the app's module-level engine can never reach ./todos.db.
_SAFETY_DIR = tempfile.TemporaryDirectory(prefix="faultlab-tests-")
os.environ["DATABASE_URL"] = f"sqlite:///{Path(_SAFETY_DIR.name) / 'todos.db'}"


def pytest_unconfigure(config: pytest.Config) -> None:
    _SAFETY_DIR.cleanup()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'todos.db'}"


@pytest.fixture
def client(sqlite_url: str) -> Iterator["TestClient"]:
    """The correct API on its own fresh, migrated SQLite file."""
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from app.database import get_db
    from app.main import create_app, migrate_to_head

    engine = create_engine(sqlite_url)
    migrate_to_head(engine)
    sessions = sessionmaker(bind=engine, autoflush=False)

    def get_test_db() -> Iterator[object]:
        with sessions() as session:
            yield session

    api = create_app(prepare_schema=lambda _engine: None)
    api.dependency_overrides[get_db] = get_test_db
    with TestClient(api) as test_client:
        yield test_client
    engine.dispose()


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Every test must stop whatever it started: a leftover child fails the test (and is killed)."""
    import psutil

    yield
    children = psutil.Process().children(recursive=True)
    if not children:
        return
    _, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        child.kill()
    assert not alive, f"processes left running: {[(p.pid, p.cmdline()) for p in alive]}"
