"""The todo API on ``AsyncSession``: the same routes, schemas, models and migrations as ``app/main.py``.

Each endpoint is the sync one with ``await`` where the database is reached, and one rule more: nothing may
load from the database implicitly (a lazy relationship, an expired attribute), because that would be IO
outside ``await`` (``MissingGreenlet``). So every query that feeds a response loads the tags up front. Faults
for this app pass ``create_async_app`` the same seams as ``create_app``: ``engine``, ``endpoints``,
``route_options``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request, Response, status
from sqlalchemy import CursorResult, Executable, delete, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from app import async_database
from app.async_database import AsyncDbSession, async_sessions_from, get_async_db
from app.main import (
    MAX_PAGE,
    Endpoint,
    Limit,
    Offset,
    TodoId,
    add_todo_routes,
    api_around,
    count_query,
    new_todo,
    not_found,
    todos_query,
)
from app.migrate import upgrade_on
from app.models import Tag, Todo
from app.schemas import TodoCount, TodoCreate, TodoUpdate

AsyncPrepareSchema = Callable[[AsyncEngine], Awaitable[None]]
WITH_TAGS = selectinload(Todo.tags)  # the response reads them: loaded with the todo, never lazily


async def _get_or_404(db: AsyncSession, todo_id: int) -> Todo:
    todo = await db.get(Todo, todo_id, options=[WITH_TAGS], populate_existing=True)
    if todo is None:
        raise not_found(todo_id)
    return todo


async def _write_or_404(db: AsyncSession, todo_id: int, statement: Executable) -> None:
    """``app.main._write_or_404``: 404, with the transaction ended, when the statement matched no row."""
    if cast(CursorResult[Any], await db.execute(statement)).rowcount == 0:
        await db.rollback()
        raise not_found(todo_id)


async def list_todos(
    db: AsyncDbSession, completed: bool | None = None, offset: Offset = 0, limit: Limit = MAX_PAGE
) -> list[Todo]:
    return list(await db.scalars(todos_query(completed, offset, limit).options(WITH_TAGS)))


async def create_todo(payload: TodoCreate, db: AsyncDbSession, request: Request) -> Todo:
    todo = new_todo(payload, request)
    db.add(todo)
    await db.commit()  # the session keeps the values written (expire_on_commit=False)
    # Read back what was stored; a todo deleted since by another request is still answered as written.
    await db.get(Todo, todo.id, options=[WITH_TAGS], populate_existing=True)
    return todo


async def count_todos(db: AsyncDbSession) -> TodoCount:
    total, done = (await db.execute(count_query())).one()
    return TodoCount(total=total, completed=done, pending=total - done)


async def read_todo(todo_id: TodoId, db: AsyncDbSession) -> Todo:
    return await _get_or_404(db, todo_id)


async def update_todo(todo_id: TodoId, payload: TodoUpdate, db: AsyncDbSession) -> Todo:
    changes = payload.model_dump(exclude_unset=True)
    if changes:
        await _write_or_404(db, todo_id, update(Todo).where(Todo.id == todo_id).values(changes))
    await db.commit()
    return await _get_or_404(db, todo_id)


async def delete_todo(todo_id: TodoId, db: AsyncDbSession) -> Response:
    await _write_or_404(db, todo_id, delete(Todo).where(Todo.id == todo_id))
    await db.execute(delete(Tag).where(Tag.todo_id == todo_id))  # PostgreSQL's foreign key cascades; SQLite's are off
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


ENDPOINTS: tuple[Endpoint, ...] = (list_todos, create_todo, count_todos, read_todo, update_todo, delete_todo)
"""In the order of ``app.main.ROUTES``: each serves the route of the same name."""


async def migrate_to_head(engine: AsyncEngine) -> None:
    """alembic is synchronous: it runs on the async connection through ``run_sync``."""
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_on)


def create_async_app(
    *,
    engine: AsyncEngine | None = None,
    prepare_schema: AsyncPrepareSchema = migrate_to_head,
    endpoints: Mapping[Endpoint, Endpoint] | None = None,
    route_options: Mapping[Endpoint, Mapping[str, Any]] | None = None,
) -> FastAPI:
    """Build the async API; ``app.state.engine`` is the ``AsyncEngine`` it serves. ``prepare_schema`` runs at
    start-up on the loop that serves: a connection it leaves in the pool belongs to that loop."""
    bound = engine or async_database.engine

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_schema(bound)
        yield
        await bound.dispose()

    api = api_around(lifespan)
    add_todo_routes(api, endpoints or {}, route_options, served=ENDPOINTS)
    api.state.engine = bound
    if engine is not None:
        own_sessions = async_sessions_from(engine)

        async def get_async_db_on_own_engine() -> AsyncGenerator[AsyncSession]:
            async with own_sessions() as db:
                yield db

        api.dependency_overrides[get_async_db] = get_async_db_on_own_engine
    return api


app = create_async_app()
