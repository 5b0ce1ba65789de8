"""The pytest plugin, as a user's suite meets it: a test that leaks a pooled connection fails with the
numbers, one that closes its session passes. Run with pytester: a real inner pytest session."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USERS_TESTS = """
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

engine = create_engine("sqlite:///{db}")


def test_closes_its_session(pool_leak_guard):
    pool_leak_guard(engine)
    with Session(engine) as session:
        session.execute(text("SELECT 1"))


def test_forgets_its_session(pool_leak_guard):
    pool_leak_guard(engine)
    session = Session(engine)
    session.execute(text("SELECT 1"))  # a transaction begun, a connection checked out, never closed
"""


def test_the_guard_fails_a_leaking_test_and_passes_a_clean_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=USERS_TESTS.format(db=pytester.path / "users.db"))
    result = pytester.runpytest("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_forgets_its_session*", "*1 checked out, 0 before the test*"])


PG_USERS_TESTS = """
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

engine = create_engine("{url}")


def test_closes_its_session(pool_leak_guard):
    pool_leak_guard(engine)
    with Session(engine) as session:
        session.execute(text("SELECT 1"))


def test_forgets_a_session_of_an_engine_made_on_the_spot(pool_leak_guard):
    pool_leak_guard(engine)
    session = Session(create_engine("{url}"))  # engine-per-request: the guarded pool never sees it
    session.execute(text("SELECT 1"))
"""


def test_on_postgresql_the_guard_fails_a_test_that_leaves_a_session_idle_in_transaction(
    pytester: pytest.Pytester,
) -> None:
    from faultlab.backends.base import PostgresBackend, postgres_problem
    from tests.test_experiments import POSTGRES_URL

    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(problem)
    backend = PostgresBackend(POSTGRES_URL, "plugin")
    backend.create()
    try:
        pytester.makepyfile(test_users=PG_USERS_TESTS.format(url=backend.url))
        # In a process of its own: the session it leaks on purpose must end with it, not in this one.
        result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    finally:
        backend.drop()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_forgets_a_session_of_an_engine_made_on_the_spot*", "*1 session(s) idle in transaction, 0 before*"]
    )


ASYNC_TESTS = """
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def engine():
    engine = create_async_engine("{url}")
    yield engine
    await engine.dispose()  # on the loop that made its connections


async def test_closes_its_session(engine, pool_leak_guard):
    pool_leak_guard(engine)
    async with AsyncSession(engine) as session:
        await session.execute(text("SELECT 1"))


async def test_forgets_its_session(engine, pool_leak_guard):
    pool_leak_guard(engine)
    session = AsyncSession(engine)
    await session.execute(text("SELECT 1"))  # checked out, in a transaction, never closed
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_guard_works_in_an_async_suite_on_an_async_engine(pytester: pytest.Pytester, backend: str) -> None:
    """anyio's pytest plugin, an ``AsyncEngine`` disposed by the suite's own async fixture: the leaking test
    fails with the pool's count (and on asyncpg PostgreSQL's), the clean one passes."""
    from sqlalchemy import make_url

    from faultlab.backends.base import PostgresBackend, postgres_problem
    from tests.test_experiments import POSTGRES_URL

    if backend == "sqlite":
        pytester.makepyfile(test_async=ASYNC_TESTS.format(url=f"sqlite+aiosqlite:///{pytester.path / 'async.db'}"))
        result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
        expected = ["*test_forgets_its_session*", "*1 checked out, 0 before the test*"]
    else:
        if problem := postgres_problem(POSTGRES_URL):
            pytest.skip(problem)
        database = PostgresBackend(POSTGRES_URL, "plugin")
        database.create()
        try:
            url = make_url(database.url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
            pytester.makepyfile(test_async=ASYNC_TESTS.format(url=url))
            result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
        finally:
            database.drop()
        expected = ["*test_forgets_its_session*", "*1 checked out, 0 before the test*1 session(s) idle in transaction*"]
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(expected)
