"""``create_todo`` flushes but never commits.

``flush()`` sends the INSERT inside the session's transaction and ``refresh()`` reads the new row back,
so the response is a perfect 201 with an id. But nothing commits the transaction: when the request's
session is closed, it is rolled back, and the row was never there for anyone else. The next todo gets the
same id, and the list stays empty.
"""

from fastapi import Request

from app.database import DbSession
from app.main import create_app, create_todo, new_todo
from app.models import Todo
from app.schemas import TodoCreate


def create_todo_without_commit(payload: TodoCreate, db: DbSession, request: Request) -> Todo:
    todo = new_todo(payload, request)
    db.add(todo)
    db.flush()  # BUG: the INSERT is sent, inside a transaction nobody commits
    db.refresh(todo)
    return todo


app = create_app(endpoints={create_todo: create_todo_without_commit})
