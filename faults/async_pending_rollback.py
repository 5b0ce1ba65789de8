"""An ``IntegrityError`` caught without a rollback: the session's next use fails ``PendingRollbackError``.

The async app with one route more, ``PUT /todos/{todo_id}``: create a todo under an id the client chose (as an
import or a sync from another system does). When the id is taken, the commit's flush fails ``IntegrityError``
and SQLAlchemy rolls the transaction back, but the session stays in that failed state until the code calls
``rollback()`` itself: until then every use of it raises ``PendingRollbackError``. The route catches the
``IntegrityError`` to answer 409 with the existing todo's title, reads it with the same session, and fails
500 instead. The fixed app (``fixed_app``) rolls back first.
"""

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, status
from sqlalchemy.exc import IntegrityError

from app.async_database import AsyncDbSession
from app.async_main import create_async_app
from app.main import TodoId
from app.models import Todo
from app.schemas import TodoCreate, TodoRead


async def put_todo(todo_id: TodoId, payload: TodoCreate, db: AsyncDbSession) -> Todo:
    todo = Todo(id=todo_id, title=payload.title, priority=payload.priority, tags=[])
    db.add(todo)
    try:
        await db.commit()  # the flush fails when the id is taken
    except IntegrityError:
        # BUG: the session must be rolled back before its next use (await db.rollback())
        existing = await db.get(Todo, todo_id)
        title = existing.title if existing is not None else "?"
        raise HTTPException(status.HTTP_409_CONFLICT, f"todo {todo_id} exists: {title!r}") from None
    return todo


async def put_todo_fixed(todo_id: TodoId, payload: TodoCreate, db: AsyncDbSession) -> Todo:
    todo = Todo(id=todo_id, title=payload.title, priority=payload.priority, tags=[])
    db.add(todo)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()  # the fix: the session is usable again (and the failed todo is no longer pending)
        existing = await db.get(Todo, todo_id)
        title = existing.title if existing is not None else "?"
        raise HTTPException(status.HTTP_409_CONFLICT, f"todo {todo_id} exists: {title!r}") from None
    return todo


def with_put(endpoint: Callable[..., Awaitable[Todo]]) -> FastAPI:
    api = create_async_app()
    api.add_api_route(
        "/todos/{todo_id}",
        endpoint,
        methods=["PUT"],
        response_model=TodoRead,
        status_code=status.HTTP_201_CREATED,
        tags=["todos"],
    )
    return api


app = with_put(put_todo)
fixed_app = with_put(put_todo_fixed)
