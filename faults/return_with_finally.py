"""``get_db`` closes the session in ``finally`` but *returns* it instead of yielding it.

A literal reading of "close the session in finally": ``try: return db finally: db.close()``. The
``finally`` runs as the function returns, before the route has used the session, so it closes nothing.
The route then uses the closed session, which simply begins a new transaction and checks out a new
connection, and nothing closes it after the response: the same leak as a missing ``yield``, behind code
that looks careful.
"""

from sqlalchemy.orm import Session

from app.database import SessionLocal, get_db
from app.main import create_app


def get_db_closed_too_early() -> Session:
    db = SessionLocal()
    try:
        return db
    finally:
        db.close()  # BUG: runs before the route uses the session, not after the response


app = create_app()
app.dependency_overrides[get_db] = get_db_closed_too_early
