"""A sync route's session gives its connection back only after FastAPI has validated the response, and
validating a sync route's response takes another thread from the same 40.

FastAPI runs a ``def`` route, the ``def`` part of a ``yield`` dependency and the validation of a ``def``
route's response in anyio's thread pool, which lends at most 40 threads at a time. ``get_db`` closes the
session, and so returns its connection to the pool, only after the response has been validated. When more
requests arrive at once than there are threads and connections, the threads go to requests that wait for a
connection while the requests that hold the connections wait for a thread. The fixed routes give the
connection back before they return, so a request never holds a connection while it waits for a thread.
"""

from fastapi import Request

from app.database import DbSession
from app.main import create_app, create_todo
from app.models import Todo
from app.schemas import TodoCreate

app = create_app()  # BUG: the correct app as written: the connection is held until after validation


def create_todo_then_close(payload: TodoCreate, db: DbSession, request: Request) -> Todo:
    todo = create_todo(payload, db, request)
    todo.tags  # noqa: B018  load what the response needs (the columns are read back already) while open
    db.close()  # the fix: the connection goes back to the pool before FastAPI needs another thread
    return todo  # validating the response needs no connection now


fixed_app = create_app(endpoints={create_todo: create_todo_then_close})
