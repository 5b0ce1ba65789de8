"""The schema is prepared at import, in ``asyncio.run()``, with the engine the app then serves with.

A common way to make sure the tables exist before serving: ``asyncio.run(init_db())`` at the top of the
module, instead of in the lifespan. ``asyncio.run`` makes an event loop, runs ``init_db`` on it and closes
it. The connection ``init_db`` used goes back to the engine's pool, and an asyncpg connection belongs to the
loop it was opened on: its socket and its futures are that loop's. uvicorn serves on a loop of its own, so
the first request to check that connection out (its pre-ping) fails ``got Future ... attached to a different
loop``. aiosqlite runs each connection in a thread of its own and answers on the caller's loop: the same code
works on SQLite. The correct app prepares the schema in its lifespan, on the loop that serves.
"""

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from app.async_database import engine
from app.async_main import create_async_app, migrate_to_head


async def init_db() -> None:
    """The tables, before the server starts (a script, a CLI, a test's set-up would do the same)."""
    await migrate_to_head(engine)
    # BUG: its connection stays in the pool, bound to asyncio.run's loop (the fix: await engine.dispose())


asyncio.run(init_db())


async def prepared_at_import(_: AsyncEngine) -> None:
    """Nothing left for the lifespan to do: ``init_db`` did it."""


app = create_async_app(prepare_schema=prepared_at_import)
