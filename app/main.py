"""The todo API: its endpoints, its route table, and ``create_app`` with the seams faults use.

Faults differ from this app in a few readable lines by passing ``create_app`` one of: another
``engine`` (``database.make_engine(...)``), another ``prepare_schema``, ``endpoints`` that swap one
endpoint function for another (``{create_todo: my_create_todo}``), or ``route_options`` that change how
a route is declared (``{read_todo: {"response_model": None}}``). Nothing here is copied by a fault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, cast

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from sqlalchemy import CursorResult, Engine, Executable, Select, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from app import database, validation_errors
from app.database import DbSession, get_db, sessions_from
from app.migrate import upgrade
from app.models import Tag, Todo
from app.schemas import TodoCount, TodoCreate, TodoRead, TodoUpdate

PrepareSchema = Callable[[Engine], None]
Endpoint = Callable[..., Any]
TodoId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A todo's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No todo has this id: none ever had, or another request deleted it (also while this one ran)"}
}
# A todo is a few hundred bytes; a larger body is a mistake or an attack, and parsing it stalls other clients.
# The routes that read a body (POST, PATCH) declare the limit; the others never read one, so they do not pay
# for its check on every request (README "Performance").
MAX_BODY_BYTES = 64 * 1024
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not UTF-8 text (FastAPI cannot read it as JSON)"},
    413: {"description": f"The body is larger than {MAX_BODY_BYTES // 1024} KiB"},
}
MAX_PAGE = 100
Offset = Annotated[int, Query(ge=0, le=2**63 - 1, description="How many todos to skip (by id)")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"At most this many todos (1-{MAX_PAGE})")]


def migrate_to_head(engine: Engine) -> None:
    """The correct start-up: alembic brings any database, new or old, to the current schema."""
    upgrade(engine, "head")


def not_found(todo_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Todo {todo_id} not found.")


def _get_or_404(db: Session, todo_id: int) -> Todo:
    todo = db.get(Todo, todo_id)
    if todo is None:
        raise not_found(todo_id)
    return todo


def _write_or_404(db: Session, todo_id: int, statement: Executable) -> None:
    """Run an UPDATE or DELETE of one todo: 404 if it matched no row (the todo is gone, deleted by another request
    included). The transaction ends before the 404 is sent: ``get_db`` closes the session only after the response,
    and until then SQLite's write lock would hold every other write."""
    if cast(CursorResult[Any], db.execute(statement)).rowcount == 0:
        db.rollback()
        raise not_found(todo_id)


def todos_query(completed: bool | None, offset: int, limit: int) -> Select[Todo]:
    """A page of todos by id, optionally only the (not) completed ones; the sync and async lists share it."""
    query = select(Todo).order_by(Todo.id).offset(offset).limit(limit)
    return query if completed is None else query.where(Todo.completed == completed)


def count_query() -> Select[int, int]:
    return select(func.count(Todo.id), func.count(Todo.id).filter(Todo.completed.is_(True)))


def list_todos(db: DbSession, completed: bool | None = None, offset: Offset = 0, limit: Limit = MAX_PAGE) -> list[Todo]:
    # One more query for every todo's tags, not one per todo (faults/n_plus_one.py leaves this out).
    return list(db.scalars(todos_query(completed, offset, limit).options(selectinload(Todo.tags))))


def new_todo(payload: TodoCreate, request: Request) -> Todo:
    """The row a create makes: the payload's fields, its tags as rows, and the address it came from."""
    todo = Todo(**payload.model_dump(exclude={"tags"}), tags=[Tag(name=name) for name in payload.tags])
    todo.created_by_ip = request.client.host if request.client else None
    return todo


def create_todo(payload: TodoCreate, db: DbSession, request: Request) -> Todo:
    """Creates the todo and answers it as stored. Another request may delete it at once: the answer is still
    201 with the todo (it was created), not a 500."""
    todo = new_todo(payload, request)
    db.add(todo)
    db.expire_on_commit = False  # the todo keeps the values written: the answer if it is gone before it is read back
    db.commit()
    # Read back what the database stored, as refresh() does. Another request may have deleted the todo since the
    # commit (guessing its id): refresh() then raised, a 500 for a todo that was created; get() finds nothing.
    db.get(Todo, todo.id, populate_existing=True)
    return todo


def count_todos(db: DbSession) -> TodoCount:
    total, done = db.execute(count_query()).one()
    return TodoCount(total=total, completed=done, pending=total - done)


def read_todo(todo_id: TodoId, db: DbSession) -> Todo:
    return _get_or_404(db, todo_id)


def update_todo(todo_id: TodoId, payload: TodoUpdate, db: DbSession) -> Todo:
    """Changes only the fields sent; none may be null.

    Concurrent updates of the same todo: the last write wins, field by field. Each update writes the fields
    it sends, whatever another request wrote since you read the todo, and leaves the other fields as they
    are (there is no version check). The answer is the todo as read right after this write. A todo that
    another request deletes, before or while this one runs, is 404.
    """
    # One UPDATE of the fields sent, rather than load, set and flush: a flush writes only what differs from its
    # own read (so an earlier write could win), and raises StaleDataError (a 500) on a todo deleted since that
    # read. Here a deleted todo matches no row: 404.
    changes = payload.model_dump(exclude_unset=True)
    if changes:
        _write_or_404(db, todo_id, update(Todo).where(Todo.id == todo_id).values(changes))
    db.commit()
    return _get_or_404(db, todo_id)  # read back: 404 if another request deleted it since


def delete_todo(todo_id: TodoId, db: DbSession) -> Response:
    """Deletes the todo and its tags. Of several requests deleting the same todo at once, one gets 204 and
    the others 404."""
    # One DELETE: of two requests deleting the same todo, the second matches no row and gets 404 (a flush of
    # db.delete(todo) would only warn, and both would get 204).
    _write_or_404(db, todo_id, delete(Todo).where(Todo.id == todo_id))
    db.execute(delete(Tag).where(Tag.todo_id == todo_id))  # PostgreSQL's foreign key cascades; SQLite's are off
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def add_todo_routes(
    api: FastAPI,
    endpoints: Mapping[Endpoint, Endpoint],
    route_options: Mapping[Endpoint, Mapping[str, Any]] | None = None,
    *,
    served: Sequence[Endpoint] | None = None,
) -> None:
    """Declare the route table on ``api``. ``endpoints`` maps an endpoint above to the function that serves in
    its place; ``route_options`` to ``add_api_route`` options that replace the route's own. ``served``: the
    endpoints, in ``ROUTES``' order, of another implementation of the same API (the async app's), each named
    like its route."""
    routes = dict(zip(ROUTES, served, strict=True)) if served is not None else {e: e for e in ROUTES}
    route_options = route_options or {}
    unknown = [getattr(e, "__name__", repr(e)) for e in [*endpoints, *route_options] if e not in routes.values()]
    if unknown:
        raise ValueError(f"not endpoints of the todo API: {', '.join(unknown)}")
    # On the app itself, not through include_router(APIRouter(...)): FastAPI 0.165 serves an included router
    # through a layer that matches each request against its routes a second time (README "Performance").
    for route, endpoint in routes.items():
        method, path, options = ROUTES[route]
        api.add_api_route(
            f"/todos{path}",
            endpoints.get(endpoint, endpoint),
            methods=[method],
            name=route.__name__,
            tags=["todos"],
            **{**options, **route_options.get(endpoint, {})},
        )


# "/count" comes before "/{todo_id}" so that "count" is never read as an id.
ROUTES: dict[Endpoint, tuple[str, str, dict[str, Any]]] = {
    list_todos: ("GET", "", {"response_model": list[TodoRead]}),
    create_todo: (
        "POST",
        "",
        {
            "response_model": TodoRead,
            "status_code": status.HTTP_201_CREATED,
            "responses": BAD_BODY,
            "max_body_size": MAX_BODY_BYTES,
        },
    ),
    count_todos: ("GET", "/count", {"response_model": TodoCount}),
    read_todo: ("GET", "/{todo_id}", {"response_model": TodoRead, "responses": NOT_FOUND}),
    update_todo: (
        "PATCH",
        "/{todo_id}",
        {"response_model": TodoRead, "responses": {**NOT_FOUND, **BAD_BODY}, "max_body_size": MAX_BODY_BYTES},
    ),
    delete_todo: ("DELETE", "/{todo_id}", {"status_code": status.HTTP_204_NO_CONTENT, "responses": NOT_FOUND}),
}


def api_around(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]]) -> FastAPI:
    """The FastAPI application the todo routes are declared on, the same for the sync and the async app."""
    # FastAPIOffline serves /docs and /redoc from assets in the package: they work without internet.
    api = FastAPIOffline(title="Todo API", version="1.0.0", lifespan=lifespan)
    api.add_exception_handler(RequestValidationError, validation_errors.short_422)
    return api


def create_app(
    *,
    engine: Engine | None = None,
    prepare_schema: PrepareSchema = migrate_to_head,
    endpoints: Mapping[Endpoint, Endpoint] | None = None,
    route_options: Mapping[Endpoint, Mapping[str, Any]] | None = None,
) -> FastAPI:
    """Build the API. ``prepare_schema`` runs once at start-up; ``app.state.engine`` is the engine it serves."""
    bound = engine or database.engine

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        prepare_schema(bound)
        yield

    api = api_around(lifespan)
    add_todo_routes(api, endpoints or {}, route_options)
    api.state.engine = bound
    if engine is not None:
        own_sessions = sessions_from(engine)

        def get_db_on_own_engine() -> Iterator[Session]:
            with own_sessions() as db:
                yield db

        api.dependency_overrides[get_db] = get_db_on_own_engine
    return api


app = create_app()
