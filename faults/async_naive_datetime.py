"""``created_at`` as most models declare it: ``DateTime``, a naive ``timestamp without time zone``, while the
default writes ``datetime.now(UTC)``, an aware value. asyncpg refuses it: every create answers 500.

The correct app's column type, ``UTCDateTime``, converts an aware value to naive UTC before it is sent; this
fault gives the column plain ``DateTime`` back, so the aware value reaches the driver as it is. psycopg (the
sync app's driver) sends it as ``timestamptz`` and PostgreSQL converts it; asyncpg encodes the parameter
itself, as a ``timestamp``, by subtracting a naive epoch from it: ``can't subtract offset-naive and
offset-aware datetimes``. SQLite stores text and drops the offset silently, so this is PostgreSQL's fault only.
"""

from typing import cast

from sqlalchemy import DateTime, Table

from app.async_main import create_async_app
from app.models import Todo

# BUG: a naive column type for the aware values the app writes (the fix: UTCDateTime, or DateTime(timezone=True))
cast(Table, Todo.__table__).c.created_at.type = DateTime()

app = create_async_app()
