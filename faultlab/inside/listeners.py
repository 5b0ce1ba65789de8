"""What the harness listens to in SQLAlchemy: the pool's events, kept as counts in shared memory, and every
statement any engine sends, kept by its text. Listening only: nothing here changes what the app runs."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event

from faultlab.inside.sites import CheckoutSites, LazyLoads
from faultlab.inside.statements import StatementWriter
from faultlab.inside.stats import StatsWriter

__all__ = ["PoolWatch", "SqlWatch"]


class PoolWatch:
    """Pool events kept as counts: which connection records are checked out, which DBAPI connections are open.

    Sets of ids rather than counters, because SQLAlchemy can report a check-in without a check-out (a
    checkout that failed half-way), and a counter would drift.

    The lock is re-entrant: a garbage collection can start inside any of these handlers (any allocation may
    start one) and return a leaked connection through ``_finalize_fairy``, which fires ``checkin`` in the
    same thread while the lock is held. With a plain lock that deadlocked the thread, and every later
    request waiting for the lock (seen in missing-yield: five writes hung, 0 statements sent). A count is
    published again until the set stops changing under it, so a nested event never leaves a stale count.
    """

    def __init__(self, engine: Engine, stats: StatsWriter, *, sites: bool = False) -> None:
        self.stats = stats
        self.checked_out: set[int] = set()
        self.open: set[int] = set()
        # Events come from many threads: a set's change and the count published from it go together.
        self._lock = threading.RLock()
        # Where each connection still checked out was taken (``/_lab/sites``): only when asked (the doctor), as the
        # stack it walks allocates, and the catalogue's runs must see the collector as an app without the lab does.
        self.sites = CheckoutSites() if sites else None
        size = getattr(engine.pool, "size", None)
        stats.put("pool_size", size() if callable(size) else -1)
        stats.put("engine", 1)
        event.listen(engine, "connect", self._connect)
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)
        event.listen(engine, "detach", self._checkin)
        event.listen(engine, "close", self._close)
        event.listen(engine, "close_detached", self._close_detached)
        event.listen(engine, "invalidate", self._invalidate)

    def _connect(self, dbapi_connection: Any, record: Any) -> None:
        with self._lock:
            self.open.add(id(dbapi_connection))
            self._publish("pool_open", self.open)
        self.stats.add("pool_connects")

    def _checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        with self._lock:
            self.checked_out.add(id(record))
            if self.sites is not None:
                self.sites.checkout(id(record))
            self._publish("pool_checked_out", self.checked_out)
        self.stats.add("pool_checkouts")

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        with self._lock:
            self.checked_out.discard(id(record))
            if self.sites is not None:
                self.sites.checkin(id(record))
            self._publish("pool_checked_out", self.checked_out)

    def _publish(self, name: str, ids: set[int]) -> None:
        """Under the lock: the set's size, again if a nested event changed it meanwhile."""
        published = -1
        while published != len(ids):
            published = len(ids)
            self.stats.put(name, published)

    def _close(self, dbapi_connection: Any, record: Any) -> None:
        self._close_detached(dbapi_connection)

    def _close_detached(self, dbapi_connection: Any) -> None:
        with self._lock:
            self.open.discard(id(dbapi_connection))
            self._publish("pool_open", self.open)

    def _invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        self.stats.add("pool_invalidations")


class SqlWatch:
    """Every statement any engine of the server hands to the driver, counted and kept by its text (never its
    values). Listened on the ``Engine`` class, so that an engine the app makes later (one per request, in
    engine-per-request) is counted too. The ORM's lazy loads are noted with where they came from
    (``faultlab.inside.sites.LazyLoads``), on the ``Session`` class for the same reason."""

    def __init__(self, statements: StatementWriter, *, sites: bool = False) -> None:
        from sqlalchemy.orm import Session

        self.statements = statements
        self.lazy_loads = LazyLoads() if sites else None
        event.listen(Engine, "before_cursor_execute", self._before_cursor_execute)
        if self.lazy_loads is not None:
            event.listen(Session, "do_orm_execute", self.lazy_loads.executed)

    def _before_cursor_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        self.statements.record(statement)
