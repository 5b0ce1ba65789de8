"""The list of todos loads each todo's tags lazily, one query per todo, while the response is serialized.

``Todo.tags`` is a lazy relationship: nothing is loaded until the attribute is read. The query returns the
todos in one statement; then FastAPI builds the response from each todo, reads ``todo.tags``, and
SQLAlchemy sends one more SELECT for that todo's tags. With N todos a request runs N + 1 statements: fast
with 5 rows on a laptop, seconds with a few hundred on a network. No error, no warning.
"""

from sqlalchemy import select

from app.database import DbSession
from app.main import MAX_PAGE, Limit, Offset, create_app, list_todos
from app.models import Todo


def list_todos_lazily(
    db: DbSession, completed: bool | None = None, offset: Offset = 0, limit: Limit = MAX_PAGE
) -> list[Todo]:
    query = select(Todo).order_by(Todo.id).offset(offset).limit(limit)  # BUG: no .options(selectinload(Todo.tags))
    if completed is not None:
        query = query.where(Todo.completed == completed)
    return list(db.scalars(query))


app = create_app(endpoints={list_todos: list_todos_lazily})
