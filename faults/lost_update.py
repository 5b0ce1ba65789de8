"""A counter bumped by read-modify-write: two requests read the same value, and one bump is lost.

``POST /todos/{id}/bump`` raises a todo's priority by one: it reads the todo, adds one in Python and writes
the result back. Under READ COMMITTED (PostgreSQL's default) a plain ``SELECT`` takes no lock, so requests
that run at once all read the same priority, and each writes that value plus one: the last write wins,
every other bump is gone, and every request answered 200. The fixed app (``fixed_app``) reads the row with
``SELECT ... FOR UPDATE``: the next bump waits at its read until this one commits, then reads its result.
"""

import time

from fastapi import FastAPI

from app.database import DbSession
from app.main import Endpoint, TodoId, create_app, not_found
from app.models import Todo
from app.schemas import TodoRead

WORK_S = 0.05  # the work between the read and the write (a check, a call): it widens the race to always


def bump_priority(todo_id: TodoId, db: DbSession) -> Todo:
    todo = db.get(Todo, todo_id)  # BUG: a plain SELECT: another request may read the same priority now
    if todo is None:
        raise not_found(todo_id)
    time.sleep(WORK_S)
    todo.priority += 1  # computed from a read that another request may already have overtaken
    db.commit()  # UPDATE todos SET priority=<the value computed here>: the last write wins
    return todo


def bump_priority_locked(todo_id: TodoId, db: DbSession) -> Todo:
    todo = db.get(Todo, todo_id, with_for_update=True)  # the fix: SELECT ... FOR UPDATE, held until the commit
    if todo is None:
        raise not_found(todo_id)
    time.sleep(WORK_S)
    todo.priority += 1
    db.commit()
    return todo


def with_bump(endpoint: Endpoint) -> FastAPI:
    """The correct app plus one route: the bump is not part of the todo API."""
    api = create_app()
    api.add_api_route("/todos/{todo_id}/bump", endpoint, methods=["POST"], response_model=TodoRead)
    return api


app = with_bump(bump_priority)
fixed_app = with_bump(bump_priority_locked)
