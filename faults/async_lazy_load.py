"""The async list loads each todo's tags lazily: implicit IO outside ``await``, a 500 (``MissingGreenlet``).

``Todo.tags`` is a lazy relationship: the sync app would send one more SELECT per todo while the response is
built (see n-plus-one), slow but correct. An ``AsyncSession`` cannot: that SELECT would be IO started by a
plain attribute read, not by an ``await``, and SQLAlchemy refuses it with ``MissingGreenlet: greenlet_spawn
has not been called; can't call await_only() here``. The list answers 500 as soon as one todo is in it.
"""

from app.async_database import AsyncDbSession
from app.async_main import create_async_app, list_todos
from app.main import MAX_PAGE, Limit, Offset, todos_query
from app.models import Todo


async def list_todos_lazily(
    db: AsyncDbSession, completed: bool | None = None, offset: Offset = 0, limit: Limit = MAX_PAGE
) -> list[Todo]:
    return list(await db.scalars(todos_query(completed, offset, limit)))  # BUG: no .options(selectinload(Todo.tags))


app = create_async_app(endpoints={list_todos: list_todos_lazily})
