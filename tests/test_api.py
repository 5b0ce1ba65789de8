"""Unit tests of the correct API's routes (TestClient against a real SQLite file)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _create(client: TestClient, **fields: object) -> dict:
    response = client.post("/todos", json={"title": "write tests", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_201_with_defaults(client: TestClient) -> None:
    todo = _create(client)
    assert set(todo) == {"id", "title", "completed", "priority", "created_at"}
    assert todo["title"] == "write tests"
    assert todo["completed"] is False
    assert todo["priority"] == 0
    assert todo["created_at"]


def test_create_strips_title_and_keeps_given_fields(client: TestClient) -> None:
    todo = _create(client, title="  ship it  ", completed=True, priority=7)
    assert (todo["title"], todo["completed"], todo["priority"]) == ("ship it", True, 7)


def test_list_is_ordered_by_id(client: TestClient) -> None:
    ids = [_create(client, title=f"t{i}")["id"] for i in range(3)]
    response = client.get("/todos")
    assert response.status_code == 200
    assert [t["id"] for t in response.json()] == sorted(ids)


def test_list_filters_by_completed(client: TestClient) -> None:
    done = _create(client, title="done", completed=True)
    open_ = _create(client, title="open")
    assert [t["id"] for t in client.get("/todos", params={"completed": "true"}).json()] == [done["id"]]
    assert [t["id"] for t in client.get("/todos", params={"completed": "false"}).json()] == [open_["id"]]


def test_list_rejects_a_non_boolean_filter(client: TestClient) -> None:
    assert client.get("/todos", params={"completed": "maybe"}).status_code == 422


def test_count_totals_completed_and_pending(client: TestClient) -> None:
    assert client.get("/todos/count").json() == {"total": 0, "completed": 0, "pending": 0}
    _create(client, completed=True)
    _create(client)
    _create(client)
    assert client.get("/todos/count").json() == {"total": 3, "completed": 1, "pending": 2}


def test_read_one(client: TestClient) -> None:
    todo = _create(client)
    response = client.get(f"/todos/{todo['id']}")
    assert response.status_code == 200
    assert response.json() == todo


def test_patch_changes_only_the_fields_sent(client: TestClient) -> None:
    todo = _create(client, priority=3)
    response = client.patch(f"/todos/{todo['id']}", json={"completed": True})
    assert response.status_code == 200, response.text
    assert response.json() == {**todo, "completed": True}
    response = client.patch(f"/todos/{todo['id']}", json={"title": "renamed", "priority": 9})
    assert response.json() == {**todo, "completed": True, "title": "renamed", "priority": 9}


def test_delete_returns_204_and_the_todo_is_gone(client: TestClient) -> None:
    todo = _create(client)
    response = client.delete(f"/todos/{todo['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/todos/{todo['id']}").status_code == 404


def test_unknown_id_is_404_with_one_sentence(client: TestClient) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, "/todos/999", json={"completed": True} if method == "PATCH" else None)
        assert response.status_code == 404, (method, response.text)
        assert response.json() == {"detail": "Todo 999 not found."}


def test_invalid_bodies_are_422(client: TestClient) -> None:
    bad_bodies = [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "\x1f"},
        {"title": "two\nlines"},
        {"title": "ok", "priority": "high"},
        {"title": "ok", "priority": 1.5},
        {"title": "ok", "priority": True},
        {"title": "ok", "priority": 101},
        {"title": "ok", "completed": "nope"},
        {"title": "ok", "complete": True},  # unknown field: rejected, not ignored
    ]
    for body in bad_bodies:
        response = client.post("/todos", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"], body
    assert client.get("/todos/count").json()["total"] == 0


def test_title_of_200_characters_is_accepted(client: TestClient) -> None:
    assert _create(client, title="x" * 200)["title"] == "x" * 200


def test_patch_rejects_nulls_blank_titles_and_unknown_fields(client: TestClient) -> None:
    todo = _create(client)
    for body in ({"title": None}, {"completed": None}, {"title": " "}, {"colour": "red"}, {"priority": "1"}):
        response = client.patch(f"/todos/{todo['id']}", json=body)
        assert response.status_code == 422, (body, response.text)
    assert client.get(f"/todos/{todo['id']}").json() == todo


def test_non_integer_or_out_of_range_id_is_422(client: TestClient) -> None:
    for path in ("/todos/abc", "/todos/0", f"/todos/{2**64}"):
        assert client.get(path).status_code == 422, path
