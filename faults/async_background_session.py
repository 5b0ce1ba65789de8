"""A background task is handed the request's session and ORM object, and runs after the response.

Creating a todo whose title says "urgent" schedules a task that asks a slow service (a classifier, here a
sleep) and then raises the todo's priority, after the response is sent (``BackgroundTasks``). The task is
given the request's ``AsyncSession`` and its ``Todo``. What that does depends on FastAPI's version: from
0.106 a ``yield`` dependency's clean-up ran before background tasks (the task got a closed session and a
detached todo); on the version installed here it runs after them, so the request's session, its connection
and its open transaction are held by a request that has already answered, for as long as the task runs.
``fixed_app`` gives the task the todo's id; the task opens a session of its own, and the route's session
is closed when the endpoint returns (``Depends(scope="function")``, FastAPI 0.121).
"""

import asyncio
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.async_database import AsyncDbSession, AsyncSessionLocal, get_async_db
from app.async_main import create_async_app, create_todo
from app.models import Todo
from app.schemas import TodoCreate

URGENT = 100
CLASSIFY_S = 2.5


async def classify(title: str) -> int:
    await asyncio.sleep(CLASSIFY_S)  # stands for a call to another service
    return URGENT if "urgent" in title else 0


async def mark_urgent(db: AsyncSession, todo: Todo) -> None:
    todo.priority = await classify(todo.title)
    await db.commit()


async def create_todo_then_classify(
    payload: TodoCreate, db: AsyncDbSession, request: Request, tasks: BackgroundTasks
) -> Todo:
    todo = await create_todo(payload, db, request)
    tasks.add_task(mark_urgent, db, todo)  # BUG: the request's session and object, used after the response
    return todo


app = create_async_app(endpoints={create_todo: create_todo_then_classify})


async def mark_urgent_by_id(todo_id: int, title: str) -> None:
    priority = await classify(title)
    async with AsyncSessionLocal() as db:  # the task's own session, only for its write
        await db.execute(update(Todo).where(Todo.id == todo_id).values(priority=priority))
        await db.commit()


async def create_todo_then_classify_fixed(
    payload: TodoCreate,
    db: Annotated[AsyncSession, Depends(get_async_db, scope="function")],  # closed when the endpoint returns
    request: Request,
    tasks: BackgroundTasks,
) -> Todo:
    todo = await create_todo(payload, db, request)
    tasks.add_task(mark_urgent_by_id, todo.id, todo.title)  # plain values, not the session or the ORM object
    return todo


fixed_app = create_async_app(endpoints={create_todo: create_todo_then_classify_fixed})
