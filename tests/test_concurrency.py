"""Requests racing on the same todos: a todo that vanishes under a request is 404, never 500, and the last
write wins.

The unit tests make each race happen on purpose: another client's statement is run, committed, at the
exact moment the request is most exposed to it (between its read and its write, or between its commit and
its read-back). The server test lets many clients race for real on a few shared ids, on a real
``python -m app``, on SQLite and on a throwaway PostgreSQL database.
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Result
from sqlalchemy.orm import ORMExecuteState, Session

from faultlab.backends.base import DEFAULT_POSTGRES_URL, PostgresBackend, postgres_problem
from faultlab.server.process import log_tail
from tests.servers import running_app

POSTGRES_URL = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _create(client: TestClient, **fields: object) -> dict[str, Any]:
    response = client.post("/todos", json={"title": "race me", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def _run(database_url: str, *statements: str) -> None:
    """Another client's statements, on a connection of its own, committed."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _rows(database_url: str, query: str) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)).all())
    finally:
        engine.dispose()


@contextmanager
def before_the_write(database_url: str, *statements: str) -> Iterator[None]:
    """Run ``statements`` as another client, committed, inside the next request's race window: right after
    its first statement if that is a read (a read-modify-write: between the read and the write), right before
    it if it is a write."""
    fired = False

    def interleave(state: ORMExecuteState) -> Result[Any] | None:
        nonlocal fired
        if fired:
            return None
        fired = True
        if not state.is_select:
            _run(database_url, *statements)
            return None
        rows = state.invoke_statement().freeze()  # fetched whole: SQLite holds no lock from it any longer
        _run(database_url, *statements)
        return rows()

    event.listen(Session, "do_orm_execute", interleave)
    try:
        yield
    finally:
        event.remove(Session, "do_orm_execute", interleave)
    assert fired, "the request sent no statement"


@contextmanager
def after_the_commit(database_url: str, *statements: str) -> Iterator[None]:
    """Run ``statements`` as another client, committed, right after the next request's commit (before it
    reads back what it wrote)."""
    fired = False

    def interleave(_: Session) -> None:
        nonlocal fired
        if not fired:
            fired = True
            _run(database_url, *statements)

    event.listen(Session, "after_commit", interleave)
    try:
        yield
    finally:
        event.remove(Session, "after_commit", interleave)
    assert fired, "the request never committed"


def test_patch_of_a_todo_deleted_before_its_write_is_404(client: TestClient, sqlite_url: str) -> None:
    todo = _create(client)
    with before_the_write(sqlite_url, f"DELETE FROM todos WHERE id = {todo['id']}"):
        response = client.patch(f"/todos/{todo['id']}", json={"completed": True})
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": f"Todo {todo['id']} not found."}


def test_patch_of_a_todo_deleted_before_it_is_read_back_is_404(client: TestClient, sqlite_url: str) -> None:
    todo = _create(client)
    with after_the_commit(sqlite_url, f"DELETE FROM todos WHERE id = {todo['id']}"):
        response = client.patch(f"/todos/{todo['id']}", json={"completed": True})
    assert response.status_code == 404, response.text


def test_a_create_whose_todo_another_client_deletes_right_after_its_commit_is_201(
    client: TestClient, sqlite_url: str
) -> None:
    """Another client guesses the new todo's id and deletes it as soon as it is committed: the todo was created,
    so the answer is 201 with it (reading it back after the commit was a 500: ``Could not refresh instance``)."""
    _create(client)
    newest = "(SELECT max(id) FROM todos)"
    with after_the_commit(
        sqlite_url, f"DELETE FROM tags WHERE todo_id = {newest}", f"DELETE FROM todos WHERE id = {newest}"
    ):
        response = client.post("/todos", json={"title": "created, then gone", "tags": ["home"]})
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "created, then gone"
    assert response.json()["tags"] == ["home"], "the answer is the todo as written"
    assert _rows(sqlite_url, "SELECT id FROM todos") == [(response.json()["id"] - 1,)]


def test_patch_sending_the_values_a_todo_already_has_on_a_deleted_todo_is_404(
    client: TestClient, sqlite_url: str
) -> None:
    todo = _create(client, priority=5)
    with before_the_write(sqlite_url, f"DELETE FROM todos WHERE id = {todo['id']}"):
        response = client.patch(f"/todos/{todo['id']}", json={"priority": 5})
    assert response.status_code == 404, response.text


def test_delete_of_a_todo_another_client_deleted_first_is_404(client: TestClient, sqlite_url: str) -> None:
    todo = _create(client, tags=["home", "urgent"])
    other = _create(client, tags=["work"])
    gone = f"DELETE FROM tags WHERE todo_id = {todo['id']}", f"DELETE FROM todos WHERE id = {todo['id']}"
    with before_the_write(sqlite_url, *gone):
        response = client.delete(f"/todos/{todo['id']}")
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": f"Todo {todo['id']} not found."}
    assert _rows(sqlite_url, "SELECT todo_id, name FROM tags") == [(other["id"], "work")]


def test_the_last_patch_wins_even_when_it_sends_the_value_the_todo_had_when_it_started(
    client: TestClient, sqlite_url: str
) -> None:
    """Another client marks the todo done while this PATCH, sent later, marks it not done: the PATCH writes
    last, so the todo is not done (a read-modify-write that only writes what changed since its read would
    skip the write and answer 200 with completed true)."""
    todo = _create(client, completed=False)
    with before_the_write(sqlite_url, f"UPDATE todos SET completed = 1 WHERE id = {todo['id']}"):
        response = client.patch(f"/todos/{todo['id']}", json={"completed": False})
    assert response.status_code == 200, response.text
    assert response.json()["completed"] is False
    assert client.get(f"/todos/{todo['id']}").json()["completed"] is False


def test_concurrent_patches_of_different_fields_both_stay(client: TestClient, sqlite_url: str) -> None:
    """Last write wins field by field: a PATCH writes only the fields it sends."""
    todo = _create(client, tags=["home"])
    with before_the_write(sqlite_url, f"UPDATE todos SET title = 'theirs' WHERE id = {todo['id']}"):
        response = client.patch(f"/todos/{todo['id']}", json={"completed": True})
    assert response.status_code == 200, response.text
    assert response.json() == {**todo, "title": "theirs", "completed": True}


def test_the_document_says_what_racing_requests_get(client: TestClient) -> None:
    operations = client.get("/openapi.json").json()["paths"]["/todos/{todo_id}"]
    said = {method: " ".join(operations[method]["description"].split()) for method in ("patch", "delete")}
    assert "the last write wins, field by field" in said["patch"], said
    assert "deletes, before or while this one runs, is 404" in said["patch"], said
    assert "one gets 204 and the others 404" in said["delete"], said
    for method in ("get", "patch", "delete"):
        assert "another request deleted it" in operations[method]["responses"]["404"]["description"], method


# The server test: many clients, a few shared ids, real races.

CLIENTS = 16
REQUESTS_EACH = 30
HOT_IDS = 4  # the clients aim at the most recently created todos only, so that they meet on the same rows
DOCUMENTED = {
    "DELETE /todos/{next id}": {204, 404},  # a guess at the id the next create gets: it races that create
    "POST /todos": {201},
    "GET /todos": {200},
    "GET /todos/count": {200},
    "GET /todos/{id}": {200, 404},
    "PATCH /todos/{id}": {200, 404},
    "DELETE /todos/{id}": {204, 404},
}


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    hot: list[int] = field(default_factory=list)
    newest: int = 0  # the highest id a create has answered
    created: int = 0
    deleted: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)  # by operation and status
    unexpected: list[str] = field(default_factory=list)

    def pick(self, rng: random.Random) -> int | None:
        with self.lock:
            return rng.choice(self.hot) if self.hot else None

    def next_id(self) -> int:
        with self.lock:
            return self.newest + 1

    def record(self, operation: str, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[operation, response.status_code] += 1
            if response.status_code not in DOCUMENTED[operation]:
                request = f"{response.request.method} {response.request.url.path}"
                self.unexpected.append(f"{request}: {response.status_code} {response.text[:500]}")
            if operation == "POST /todos" and response.status_code == 201:
                self.created += 1
                self.hot = [*self.hot, response.json()["id"]][-HOT_IDS:]
                self.newest = max(self.newest, response.json()["id"])
            elif operation.startswith("DELETE") and response.status_code == 204:
                self.deleted += 1


def _a_request(
    rng: random.Random, target: int | None, next_id: int, name: str
) -> tuple[str, str, dict[str, Any] | None]:
    """A client's next request: the operation (as ``DOCUMENTED`` names it), the path and the body."""
    roll = rng.random()
    if roll < 0.25:
        # Deleting the todo the next create makes, maybe while that create reads it back to answer.
        return "DELETE /todos/{next id}", f"/todos/{next_id}", None
    if target is None or roll < 0.5:
        tags = rng.sample(["home", "work", "urgent"], rng.randint(0, 2))
        return "POST /todos", "/todos", {"title": name, "tags": tags}
    if roll < 0.58:
        return "GET /todos/{id}", f"/todos/{target}", None
    if roll < 0.62:
        path = rng.choice(["/todos", "/todos/count"])
        return f"GET {path}", path, None
    if roll < 0.85:
        changes = {"title": f"renamed: {name}", "completed": rng.random() < 0.5, "priority": rng.randint(0, 100)}
        return "PATCH /todos/{id}", f"/todos/{target}", dict(rng.sample(sorted(changes.items()), rng.randint(1, 3)))
    return "DELETE /todos/{id}", f"/todos/{target}", None


def _client_work(base: str, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(REQUESTS_EACH):
            operation, path, body = _a_request(rng, tally.pick(rng), tally.next_id(), f"client {seed} todo {i}")
            method = operation.split()[0]
            try:
                response = http.request(method, path, json=body)
            except httpx.TransportError as exc:
                with tally.lock:
                    tally.unexpected.append(f"{method} {path}: no answer: {exc!r}")
                continue
            tally.record(operation, response)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'todos.db'}"
        return
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(f"{problem}; set FAULTLAB_POSTGRES_URL to a server where the tests may create databases")
    backend = PostgresBackend(POSTGRES_URL, "concurrency")
    backend.create()
    try:
        yield backend.url
    finally:
        backend.drop()


def test_clients_racing_on_the_same_todos_get_only_documented_answers(tmp_path: Path, database_url: str) -> None:
    tally = Tally()
    with running_app(tmp_path, database_url) as (base, _):
        with ThreadPoolExecutor(CLIENTS) as pool:
            for future in [pool.submit(_client_work, base, seed, tally) for seed in range(CLIENTS)]:
                future.result()
        count = httpx.get(f"{base}/todos/count", timeout=30).json()
    log = next(tmp_path.glob("app-*.log"))
    server_said = _server_said(log)

    assert not tally.unexpected, (
        f"{len(tally.unexpected)} undocumented answers, first: {tally.unexpected[0]}\n{server_said}"
    )
    assert sum(tally.statuses.values()) == CLIENTS * REQUESTS_EACH
    assert count["total"] == tally.created - tally.deleted, (
        f"{tally.created} created, {tally.deleted} deleted (204), but the count says {count}\n{server_said}"
    )
    raced = sum(n for (_, status), n in tally.statuses.items() if status == 404)
    assert raced, f"no request met a vanished todo: the clients did not race ({dict(tally.statuses)})"
    assert not _exception_lines(log), server_said
    orphans = _rows(database_url, "SELECT count(*) FROM tags WHERE todo_id NOT IN (SELECT id FROM todos)")
    assert orphans == [(0,)], f"tags of deleted todos left behind: {orphans}"
    print(f"{CLIENTS} clients x {REQUESTS_EACH} requests: {dict(tally.statuses)}")


_EXCEPTION = re.compile(r"^(\S+: )?[\w.]+(Error|Exception|Warning)\b.*$", re.MULTILINE)


def _exception_lines(log: Path) -> list[str]:
    """The server's exceptions and warnings, one line each (a traceback's last line, a warning's message)."""
    return [m.group(0) for m in _EXCEPTION.finditer(log.read_text(encoding="utf-8", errors="replace"))]


def _server_said(log: Path) -> str:
    exceptions = Counter(_exception_lines(log))
    listed = "".join(f"\n  {n} x {line}" for line, n in exceptions.most_common(5)) or " none"
    return f"server exceptions and warnings:{listed}\nserver log, last lines:\n{log_tail(log, 15)}"
