"""Engine, session factory and the request-scoped session dependency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from app import settings


def make_engine(url: str | None = None, **options: Any) -> Engine:
    """The app's engine: URL and pool settings from the environment; ``options`` override them.

    ``pool_pre_ping`` tests a pooled connection before handing it out, so a database restart or an idle
    timeout costs a reconnect instead of a failed request (``faults/no_pre_ping.py`` shows the failure). On
    PostgreSQL every connection runs with ``statement_timeout`` (``settings.statement_timeout_ms``): a
    ``connect_args`` given here is merged over it, so a fault or a fix changes only what it names.
    """
    url = url or settings.database_url()
    parsed = make_url(url)
    connect_args = {
        **settings.timeout_connect_args(parsed.get_backend_name(), parsed.get_driver_name()),
        **options.pop("connect_args", {}),
    }
    extra = {"connect_args": connect_args} if connect_args else {}
    return create_engine(url, **{"pool_pre_ping": True, **settings.pool_options(), **extra, **options})


engine = make_engine()
SessionLocal = sessionmaker(bind=engine, autoflush=False)


def get_db() -> Iterator[Session]:
    """One session per request, closed after the response whatever happened.

    The ``finally`` is the whole point: it returns the connection to the pool. ``faults/missing_yield.py``
    shows what happens without it.
    """
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def sessions_from(bound: Engine) -> sessionmaker[Session]:
    """A session factory like ``SessionLocal`` on another engine (for an app built with ``create_app(engine=...)``)."""
    return sessionmaker(bind=bound, autoflush=False)


DbSession = Annotated[Session, Depends(get_db)]
