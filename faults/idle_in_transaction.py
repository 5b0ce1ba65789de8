"""A route keeps its transaction open while it waits on something else (another service, an e-mail).

The first query of a request begins a transaction, and it lasts until the session commits, rolls back or
closes, which ``get_db`` does only after the response. While the route waits two seconds on a slow call,
PostgreSQL sees the session ``idle in transaction``: it holds the transaction's snapshot and its locks
(a concurrent ``ALTER TABLE`` waits behind it, VACUUM cannot clean up after it). The fixed app
(``fixed_app``) ends the transaction before it waits.
"""

import time

from app.database import DbSession
from app.main import TodoId, create_app, read_todo
from app.models import Todo
from app.schemas import TodoRead

SLOW_CALL_S = 2.0


def call_a_slow_service(todo: Todo) -> None:
    time.sleep(SLOW_CALL_S)  # stands for an HTTP call to another service


def read_todo_then_call_out(todo_id: TodoId, db: DbSession) -> Todo:
    todo = read_todo(todo_id, db)  # the SELECT began a transaction...
    call_a_slow_service(todo)  # BUG: ...which stays open, idle, while the route waits on something else
    return todo


app = create_app(endpoints={read_todo: read_todo_then_call_out})


def read_todo_then_call_out_fixed(todo_id: TodoId, db: DbSession) -> TodoRead:
    todo = read_todo(todo_id, db)
    response = TodoRead.model_validate(todo)  # read all the response needs (its tags too) first...
    db.commit()  # the fix: ...then end the transaction before waiting on anything else
    call_a_slow_service(todo)
    return response


fixed_app = create_app(endpoints={read_todo: read_todo_then_call_out_fixed})
