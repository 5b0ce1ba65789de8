"""The response is built after the session that loaded it is closed, so the todo cannot be read back.

``create_todo_then_close`` opens its own session in a ``with`` block, commits, and returns the todo after
the block has closed the session. ``commit()`` expires the object's attributes (they will be reloaded on
next access), and the session that could reload them is gone: FastAPI's response validation reads
``todo.id`` and gets ``DetachedInstanceError: Instance <Todo> is not bound to a Session``, a 500 wrapped in
``ResponseValidationError``. Yet the INSERT was committed: the row is in the database.
"""

from fastapi import Request

from app.database import SessionLocal
from app.main import create_app, create_todo, new_todo
from app.models import Todo
from app.schemas import TodoCreate


def create_todo_then_close(payload: TodoCreate, request: Request) -> Todo:
    with SessionLocal() as db:
        todo = new_todo(payload, request)
        db.add(todo)
        db.commit()  # expires the todo's attributes...
    return todo  # BUG: ...and the session that could reload them is closed


app = create_app(endpoints={create_todo: create_todo_then_close})
