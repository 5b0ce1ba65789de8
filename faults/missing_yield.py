"""``get_db`` returns the session instead of yielding it, so nothing ever closes it.

Each request checks a connection out of the pool and never gives it back. A ``Session`` and its
transaction reference each other, so dropping the last reference does not free it: the connection comes
back only when Python's cyclic garbage collector happens to run. The leak is therefore intermittent:
requests pile up connections, fail with ``QueuePool limit ... reached`` once ``pool_size + max_overflow``
are out, and recover whenever the collector runs. No warning is logged.
"""

from sqlalchemy.orm import Session

from app.database import SessionLocal, get_db
from app.main import create_app


def get_db_without_yield() -> Session:
    return SessionLocal()  # BUG: no yield, no finally: db.close()


app = create_app()
app.dependency_overrides[get_db] = get_db_without_yield
