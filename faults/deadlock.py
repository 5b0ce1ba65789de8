"""Two requests lock the same two rows in opposite order: PostgreSQL detects the deadlock and kills one.

``POST /todos/{id}/give/{other}`` moves one point of priority from a todo to another: two ``UPDATE``s in
one transaction, each locking its row until the commit. Giving from 1 to 2 locks 1 then 2; giving from 2 to
1 at the same time locks 2 then 1. Each then waits for the row the other holds, forever; after
``deadlock_timeout`` (1 s) PostgreSQL finds the cycle and aborts one of them with ``deadlock detected``: a
500. The fixed app (``fixed_app``) locks both rows first, in the order of their ids, so the second request
waits for the first instead of crossing it.
"""

import time

from fastapi import FastAPI, Response, status
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.database import DbSession
from app.main import Endpoint, TodoId, _write_or_404, create_app
from app.models import Todo

WORK_S = 0.3  # the work between the two writes: it widens the window to always


def _move_one_point(db: Session, todo_id: int, other_id: int) -> Response:
    _write_or_404(db, todo_id, update(Todo).where(Todo.id == todo_id).values(priority=Todo.priority - 1))
    time.sleep(WORK_S)
    _write_or_404(db, other_id, update(Todo).where(Todo.id == other_id).values(priority=Todo.priority + 1))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def give_priority(todo_id: TodoId, other_id: TodoId, db: DbSession) -> Response:
    # BUG: the rows are locked in the order of the request's arguments: giving 1→2 and 2→1 at once cross
    return _move_one_point(db, todo_id, other_id)


def give_priority_in_order(todo_id: TodoId, other_id: TodoId, db: DbSession) -> Response:
    # the fix: lock both rows first, lowest id first, whichever way the point moves
    db.execute(select(Todo.id).where(Todo.id.in_((todo_id, other_id))).order_by(Todo.id).with_for_update())
    return _move_one_point(db, todo_id, other_id)


def with_give(endpoint: Endpoint) -> FastAPI:
    """The correct app plus one route: moving priority is not part of the todo API."""
    api = create_app()
    api.add_api_route("/todos/{todo_id}/give/{other_id}", endpoint, methods=["POST"], status_code=204)
    return api


app = with_give(give_priority)
fixed_app = with_give(give_priority_in_order)
