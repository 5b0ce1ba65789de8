"""The async engine, session factory and request-scoped session dependency: ``app/database.py`` for ``AsyncSession``.

The same ``DATABASE_URL`` as the sync app, with the async driver swapped in: ``sqlite:///todos.db`` is served
through aiosqlite, ``postgresql://`` (or ``postgresql+psycopg://``) through asyncpg.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app import settings

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str | URL) -> URL:
    """``url`` with its backend's async driver (a URL that already names one is kept as it is)."""
    parsed = make_url(url)
    driver = ASYNC_DRIVERS.get(parsed.get_backend_name())
    if driver is None:
        raise ValueError(f"no async driver known for {parsed.get_backend_name()!r} (known: {', '.join(ASYNC_DRIVERS)})")
    return parsed if parsed.get_driver_name() in ("aiosqlite", "asyncpg") else parsed.set(drivername=driver)


def make_async_engine(url: str | URL | None = None, **options: Any) -> AsyncEngine:
    """The async app's engine: the sync app's settings (``pool_pre_ping``, the pool and, on PostgreSQL, the
    statement timeout, as asyncpg's ``server_settings``); a ``connect_args`` given here is merged over them."""
    parsed = async_url(url or settings.database_url())
    connect_args = {
        **settings.timeout_connect_args(parsed.get_backend_name(), parsed.get_driver_name()),
        **options.pop("connect_args", {}),
    }
    extra = {"connect_args": connect_args} if connect_args else {}
    return create_async_engine(parsed, **{"pool_pre_ping": True, **settings.pool_options(), **extra, **options})


def async_sessions_from(bound: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """``expire_on_commit=False``: after ``await commit()`` the objects keep their values. With it on, the
    next read of an attribute would reload it, an implicit query outside ``await``: ``MissingGreenlet``."""
    return async_sessionmaker(bind=bound, autoflush=False, expire_on_commit=False)


engine = make_async_engine()
AsyncSessionLocal = async_sessions_from(engine)


async def get_async_db() -> AsyncIterator[AsyncSession]:
    """One session per request, closed after the response whatever happened (``get_db``'s ``finally``)."""
    async with AsyncSessionLocal() as db:
        yield db


AsyncDbSession = Annotated[AsyncSession, Depends(get_async_db)]
