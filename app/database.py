"""Engine, session factory and the request-scoped session dependency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from app import settings

engine = create_engine(settings.database_url(), **settings.pool_options())
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


DbSession = Annotated[Session, Depends(get_db)]
