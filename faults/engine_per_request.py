"""Every request builds a new engine, and with it a new connection pool.

The session is closed properly, so its connection goes back to *its* pool, which belongs to an engine
nobody else will use: the connection stays open until the garbage collector happens to free that engine.
The app's own pool says nothing is checked out, while the operating system and the database count one
more connection per request. Engines are meant to be made once per process.
"""

from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.database import get_db, make_engine
from app.main import create_app


def get_db_on_a_new_engine() -> Iterator[Session]:
    with Session(make_engine()) as db:  # BUG: a new engine, and a new pool, for every request
        yield db


app = create_app()
app.dependency_overrides[get_db] = get_db_on_a_new_engine
