"""The yardstick for bench_app.py: a todo list written the way FastAPI's SQL tutorial writes its heroes API.

SQLModel, one engine with the tutorial's arguments, ``with Session(engine) as session: yield session`` as an
``Annotated`` dependency, ``def`` routes with a ``response_model``, ``session.exec(select(...))`` for the
list and ``session.get`` for one. It reads the ``todos`` table of the SQLite file named by ``DATABASE_URL``
(bench_app.py gives it a copy of the todo API's database, so both serve the same rows) with the fields the
todo API serves, except ``tags``: it has no relationship.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query
from sqlmodel import Field, Session, SQLModel, create_engine, select


class TodoBase(SQLModel):
    title: str = Field(max_length=200)
    completed: bool = False
    priority: int = Field(default=0, ge=0, le=100)


class Todo(TodoBase, table=True):
    __tablename__ = "todos"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class TodoPublic(TodoBase):
    id: int
    created_at: datetime


class TodoCreate(TodoBase):
    pass


engine = create_engine(os.environ["DATABASE_URL"], connect_args={"check_same_thread": False})


def get_session():  # type: ignore[no-untyped-def]  # as the tutorial writes it
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
app = FastAPI()


@app.post("/todos", response_model=TodoPublic, status_code=201)
def create_todo(todo: TodoCreate, session: SessionDep) -> Todo:
    db_todo = Todo.model_validate(todo)
    session.add(db_todo)
    session.commit()
    session.refresh(db_todo)
    return db_todo


@app.get("/todos", response_model=list[TodoPublic])
def read_todos(session: SessionDep, offset: int = 0, limit: Annotated[int, Query(le=100)] = 100) -> list[Todo]:
    return list(session.exec(select(Todo).offset(offset).limit(limit)).all())


@app.get("/todos/{todo_id}", response_model=TodoPublic)
def read_todo(todo_id: int, session: SessionDep) -> Todo:
    todo = session.get(Todo, todo_id)
    if not todo:
        raise HTTPException(status_code=404, detail="Todo not found")
    return todo
