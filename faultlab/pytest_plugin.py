"""A pytest plugin for your own suite: fail a test that leaves pooled connections checked out.

Registered through the ``pytest11`` entry point, it only adds a fixture, so it does nothing unless a test
asks for it::

    def test_create(client, pool_leak_guard):
        pool_leak_guard(engine)          # the app's SQLAlchemy engine (an AsyncEngine too)
        client.post("/todos", json={"title": "x"})

In an async suite (anyio's or pytest-asyncio's), guard the ``AsyncEngine`` the same way; the check needs no
event loop, so dispose the engine in your own async fixture, on the loop that made its connections.

After the test, every engine handed to ``pool_leak_guard`` must have as many connections checked out as
before it, and on PostgreSQL the database as many sessions idle in transaction (read on a connection of the
guard's own: this sees what the pool cannot, such as a session on an engine made per request); otherwise
the test fails with the numbers. The garbage collector is off during the test, as in
the lab's experiments: a session that is never closed would otherwise be freed, and its leak hidden, at
moments nobody chooses (an unreliable test, which is how leaks survive code review).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from faultlab.backends.base import ACTIVITY_SQL

__all__ = ["pool_leak_guard", "pytest_runtest_call"]


def _idle_in_transaction(engine: Any) -> int | None:
    """PostgreSQL's count of sessions idle in transaction on the engine's database, on a connection of our
    own (not the engine's pool, whose count it would change); None on other databases. An ``AsyncEngine``'s
    database is read through psycopg: the guard reads between a test and its clean-up, outside any event loop."""
    if engine.dialect.name != "postgresql":
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    url = engine.url
    if url.get_driver_name() == "asyncpg":
        url = url.set(drivername="postgresql+psycopg")
    own = create_engine(url, poolclass=NullPool)
    try:
        with own.connect() as connection:
            database = connection.execute(text("SELECT current_database()")).scalar_one()
            rows = connection.exec_driver_sql(ACTIVITY_SQL, {"database": database, "role": None})
            return int(rows.one()[1])
    finally:
        own.dispose()


class _Guard:
    def __init__(self) -> None:
        self.watched: list[tuple[Any, int, int | None]] = []

    def __call__(self, engine: Any) -> Any:
        self.watched.append((engine, engine.pool.checkedout(), _idle_in_transaction(engine)))
        return engine

    def leaks(self) -> list[str]:
        from faultlab.backends.base import (
            redact,  # here, not at the top: every pytest run in the environment loads this
        )

        found = []
        for engine, before, idle_before in self.watched:
            where = redact(engine.url.render_as_string(hide_password=True))
            if engine.pool.checkedout() > before:
                found.append(f"{where}: {engine.pool.checkedout()} checked out, {before} before the test")
            idle = _idle_in_transaction(engine)
            if idle is not None and idle_before is not None and idle > idle_before:
                found.append(f"{where}: {idle} session(s) idle in transaction, {idle_before} before the test")
        return found


_GUARD = pytest.StashKey[_Guard]()


@pytest.fixture
def pool_leak_guard(request: pytest.FixtureRequest) -> Iterator[Callable[[Any], Any]]:
    guard = _Guard()
    request.node.stash[_GUARD] = guard
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield guard
    finally:
        if was_enabled:
            gc.enable()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Checked as the test body ends, before any fixture's clean-up could close what the test left open:
    the test itself fails, with the numbers."""
    result = yield
    guard = item.stash.get(_GUARD, None)
    if guard is not None and (leaks := guard.leaks()):
        pytest.fail(
            "connections still checked out of the pool, or sessions idle in transaction, after the test (a "
            "session that was never closed, e.g. a dependency that returns instead of yielding): " + "; ".join(leaks),
            pytrace=False,
        )
    return result
