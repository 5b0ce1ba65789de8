"""The ORM models (SQLAlchemy 2.x typed declarative). Their tables are created and altered by migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, ForeignKey, Integer, String, TypeDecorator, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC (SQLAlchemy's documented recipe).

    The column stays ``DateTime`` (naive), so no migration is needed: the rows already there were written by
    ``CURRENT_TIMESTAMP``/``now()``, which are UTC on SQLite and in the session's time zone on PostgreSQL
    (``Etc/UTC`` by default); this type only says so in what it returns.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Todo(Base):
    __tablename__ = "todos"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    completed: Mapped[bool] = mapped_column(default=False)
    # Added by migration 0002; a database that predates it needs that migration (see stale-schema).
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Written by the app in UTC whatever the database's time zone; the server default covers other writers.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utc_now, server_default=func.now())
    # Added by migration 0003. Kept for abuse handling, never served: an IP address is personal data, and
    # TodoRead (the response schema) leaves it out. See missing-response-schema for what serves it anyway.
    created_by_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    # Lazy by default: each todo's tags are one more query when first read. Lists load them up front
    # (selectinload in app/main.py); see n-plus-one for a list that does not.
    tags: Mapped[list[Tag]] = relationship(cascade="all, delete-orphan", order_by="Tag.id")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    todo_id: Mapped[int] = mapped_column(ForeignKey("todos.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(50))
