"""One ``AsyncSession``, made at import, serves every request: fine one at a time, broken under concurrency.

An ``AsyncSession`` (and the one connection under it) does one thing at a time, yet nothing stops two
requests from awaiting it at once: while one request's query waits for the database, the event loop runs
another request's query on the same session. SQLAlchemy (``IllegalStateChangeError``, "session is
provisioning a new connection; concurrent operations are not permitted") or the driver (asyncpg's "another
operation is in progress") refuses, and the requests that were unlucky fail. Sequential tests never see it.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.async_database import AsyncSessionLocal, get_async_db
from app.async_main import create_async_app

shared_session = AsyncSessionLocal()  # BUG: one session for every request, and requests run concurrently


async def get_shared_db() -> AsyncSession:
    return shared_session


app = create_async_app()
app.dependency_overrides[get_async_db] = get_shared_db
