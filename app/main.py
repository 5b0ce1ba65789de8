"""The todo API's routes, and ``create_app`` whose one seam (how the schema is prepared) faults can swap."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Response, status
from sqlalchemy import Engine, func, select

from app import database
from app.database import DbSession
from app.migrate import upgrade
from app.models import Todo
from app.schemas import TodoCount, TodoCreate, TodoRead, TodoUpdate

PrepareSchema = Callable[[Engine], None]
TodoId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A todo's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No todo has this id"}}

router = APIRouter(prefix="/todos", tags=["todos"])


def migrate_to_head(engine: Engine) -> None:
    """The correct start-up: alembic brings any database, new or old, to the current schema."""
    upgrade(engine, "head")


def _get_or_404(db: DbSession, todo_id: int) -> Todo:
    todo = db.get(Todo, todo_id)
    if todo is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Todo {todo_id} not found.")
    return todo


@router.get("", response_model=list[TodoRead])
def list_todos(db: DbSession, completed: bool | None = None) -> list[Todo]:
    query = select(Todo).order_by(Todo.id)
    if completed is not None:
        query = query.where(Todo.completed == completed)
    return list(db.scalars(query))


@router.post("", response_model=TodoRead, status_code=status.HTTP_201_CREATED)
def create_todo(payload: TodoCreate, db: DbSession) -> Todo:
    todo = Todo(**payload.model_dump())
    db.add(todo)
    db.commit()
    db.refresh(todo)
    return todo


# Declared before /{todo_id} so that "count" is never read as an id.
@router.get("/count", response_model=TodoCount)
def count_todos(db: DbSession) -> TodoCount:
    total, done = db.execute(select(func.count(Todo.id), func.count(Todo.id).filter(Todo.completed.is_(True)))).one()
    return TodoCount(total=total, completed=done, pending=total - done)


@router.get("/{todo_id}", response_model=TodoRead, responses=NOT_FOUND)
def read_todo(todo_id: TodoId, db: DbSession) -> Todo:
    return _get_or_404(db, todo_id)


@router.patch("/{todo_id}", response_model=TodoRead, responses=NOT_FOUND)
def update_todo(todo_id: TodoId, payload: TodoUpdate, db: DbSession) -> Todo:
    todo = _get_or_404(db, todo_id)
    for field, value in payload.model_dump(exclude_unset=True).items():
        setattr(todo, field, value)
    db.commit()
    db.refresh(todo)
    return todo


@router.delete("/{todo_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_todo(todo_id: TodoId, db: DbSession) -> Response:
    db.delete(_get_or_404(db, todo_id))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def create_app(*, prepare_schema: PrepareSchema = migrate_to_head) -> FastAPI:
    """Build the API. ``prepare_schema`` runs once at start-up against the app's engine."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        prepare_schema(database.engine)
        yield

    api = FastAPI(title="Todo API", version="1.0.0", lifespan=lifespan)
    api.include_router(router)
    return api


app = create_app()
