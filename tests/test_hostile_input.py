"""Property-based: whatever a client sends, the correct API answers without a 5xx, and what it returns fits
its own schema."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.schemas import TodoCount, TodoRead
from tests.apis import todo_api

EXAMPLES = settings(
    max_examples=int(os.environ.get("FAULTLAB_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=300)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from(["title", "completed", "priority", "id", "created_at"]) | st.text(max_size=12)
bodies = st.dictionaries(field_names, json_values, max_size=5) | json_values
url_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/?#%"), min_size=1, max_size=30
).filter(
    lambda segment: segment.strip(".") != ""  # "", "." and ".." are other paths, not ids
)
ids = st.integers() | url_text


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("hostile") / "todos.db"
    with todo_api(f"sqlite:///{path}", raise_server_exceptions=False) as client:
        client.post("/todos", json={"title": "a todo to aim at"})
        yield client


def _assert_fits(response: Any) -> None:
    """No 5xx; and a todo that comes back is a valid todo (the response schema holds)."""
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code in (200, 201):
        todo = TodoRead.model_validate(response.json())
        assert 1 <= len(todo.title) <= 200 and todo.title == todo.title.strip()
        assert 0 <= todo.priority <= 100


@EXAMPLES
@given(body=bodies)
def test_create_never_errs(api: TestClient, body: Any) -> None:
    response = api.post("/todos", json=body)
    _assert_fits(response)
    assert response.status_code in {201, 422}, response.text


@EXAMPLES
@given(todo_id=ids, body=bodies)
def test_update_never_errs(api: TestClient, todo_id: Any, body: Any) -> None:
    _assert_fits(api.patch(f"/todos/{todo_id}", json=body))


@EXAMPLES
@given(todo_id=ids)
def test_read_and_delete_never_err(api: TestClient, todo_id: Any) -> None:
    _assert_fits(api.get(f"/todos/{todo_id}"))
    response = api.delete(f"/todos/{todo_id}")
    assert response.status_code < 500, response.text
    if response.status_code == 204:
        api.post("/todos", json={"title": "a todo to aim at"})


@EXAMPLES
@given(completed=st.text(max_size=20))
def test_list_filter_never_errs(api: TestClient, completed: str) -> None:
    response = api.get("/todos", params={"completed": completed})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        [TodoRead.model_validate(item) for item in response.json()]
    TodoCount.model_validate(api.get("/todos/count").json())


@EXAMPLES
@given(raw=st.binary(max_size=200))
def test_raw_bytes_are_rejected_not_crashed_on(api: TestClient, raw: bytes) -> None:
    response = api.post("/todos", content=raw, headers={"content-type": "application/json"})
    # 400 is FastAPI's answer to a body that is not even text ("There was an error parsing the body").
    _assert_fits(response)
