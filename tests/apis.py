"""The correct API in-process (TestClient) on its own migrated SQLite file, for unit and property tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.database import get_db
from app.main import create_app, migrate_to_head


@contextmanager
def todo_api(database_url: str, *, raise_server_exceptions: bool = True) -> Iterator[TestClient]:
    engine = create_engine(database_url)
    migrate_to_head(engine)
    sessions = sessionmaker(bind=engine, autoflush=False)

    def get_test_db() -> Iterator[Session]:
        with sessions() as session:
            yield session

    api = create_app(prepare_schema=lambda _engine: None)
    api.dependency_overrides[get_db] = get_test_db
    try:
        with TestClient(api, raise_server_exceptions=raise_server_exceptions) as client:
            yield client
    finally:
        engine.dispose()


@contextmanager
def async_todo_api(database_url: str, *, raise_server_exceptions: bool = True) -> Iterator[TestClient]:
    """The async app (``app.async_main``) the same way: its own engine (aiosqlite), migrated at its start-up."""
    from app.async_database import make_async_engine
    from app.async_main import create_async_app

    api = create_async_app(engine=make_async_engine(database_url))  # disposed by its lifespan, on its loop
    with TestClient(api, raise_server_exceptions=raise_server_exceptions) as client:
        yield client
