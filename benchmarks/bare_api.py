"""The floor for bench_app.py: FastAPI endpoints answering the same JSON as the todo API, with no database.

The answers are read at start-up from the file named by ``BENCH_ANSWERS`` (bench_app.py writes it with what
the real app answered), so both servers send the same bytes' worth of JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ANSWERS: dict[str, Any] = json.loads(Path(os.environ["BENCH_ANSWERS"]).read_text())
app = FastAPI()


@app.get("/todos")
def list_todos() -> Any:
    return ANSWERS["list"]


@app.get("/todos/count")
def count_todos() -> Any:
    return ANSWERS["count"]


@app.get("/todos/{todo_id}")
def read_todo(todo_id: int) -> Any:
    return ANSWERS["one"]


@app.post("/todos", status_code=201)
def create_todo(payload: dict[str, Any]) -> Any:
    return ANSWERS["one"]
