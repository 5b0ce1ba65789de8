"""One session, made at import, serves every request.

It works while every statement succeeds. The first statement that fails (here: a write that times out
waiting for a lock) leaves the session's transaction failed, and a session in that state refuses all
further work until someone calls ``rollback()``: every later request, on any route, fails with
``PendingRollbackError: This Session's transaction has been rolled back due to a previous exception during
flush``, until the server is restarted. One bad request breaks the server. (Concurrent requests on one
session fail in other ways too.)
"""

from sqlalchemy.orm import Session

from app.database import SessionLocal, get_db
from app.main import create_app

shared_session = SessionLocal()  # BUG: one session for every request, never rolled back


def get_shared_db() -> Session:
    return shared_session


app = create_app()
app.dependency_overrides[get_db] = get_shared_db
