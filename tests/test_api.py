"""Unit tests of the correct API's routes, sync and async (TestClient against a real SQLite file)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.apis import async_todo_api, todo_api


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[TestClient]:
    """Every test here on the sync app and on the async app (``python -m app --async``): one API, two sessions."""
    serve = todo_api if request.param == "sync" else async_todo_api
    with serve(sqlite_url) as test_client:
        yield test_client


def _create(client: TestClient, **fields: object) -> dict:
    response = client.post("/todos", json={"title": "write tests", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_201_with_defaults(client: TestClient) -> None:
    todo = _create(client)
    assert set(todo) == {"id", "title", "completed", "priority", "created_at", "tags"}
    assert todo["title"] == "write tests"
    assert todo["completed"] is False
    assert todo["priority"] == 0
    assert todo["tags"] == []
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


def test_tags_are_stripped_kept_once_in_order_and_served_by_every_route(client: TestClient) -> None:
    todo = _create(client, tags=[" home ", "urgent", "home"])
    assert todo["tags"] == ["home", "urgent"]
    assert client.get(f"/todos/{todo['id']}").json()["tags"] == ["home", "urgent"]
    assert [t["tags"] for t in client.get("/todos").json()] == [["home", "urgent"]]
    assert client.patch(f"/todos/{todo['id']}", json={"completed": True}).json()["tags"] == ["home", "urgent"]


def test_invalid_tags_are_422(client: TestClient) -> None:
    for tags in ([""], ["x" * 51], ["a\tb"], [1], "home", [f"t{i}" for i in range(21)], None):
        response = client.post("/todos", json={"title": "ok", "tags": tags})
        assert response.status_code == 422, (tags, response.text)
    assert client.get("/todos/count").json()["total"] == 0


def test_deleting_a_todo_deletes_its_tags(client: TestClient, sqlite_url: str) -> None:
    from sqlalchemy import create_engine, text

    todo = _create(client, tags=["a", "b"])
    _create(client, tags=["c"])
    assert client.delete(f"/todos/{todo['id']}").status_code == 204
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM tags")).scalars().all() == ["c"]
    engine.dispose()


def test_created_by_ip_is_stored_but_never_served(client: TestClient, sqlite_url: str) -> None:
    from sqlalchemy import create_engine, text

    todo = _create(client, tags=["x"])
    served = [
        client.get(f"/todos/{todo['id']}").text,
        client.get("/todos").text,
        client.patch(f"/todos/{todo['id']}", json={"title": "renamed"}).text,
        str(todo),
    ]
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT created_by_ip FROM todos")).scalar_one()
    engine.dispose()
    assert stored == "testclient"  # TestClient's client address; a real server stores the peer's IP
    for body in served:
        assert "created_by_ip" not in body and stored not in body, body
    assert "created_by_ip" not in client.get("/openapi.json").text


def test_created_by_ip_cannot_be_sent(client: TestClient) -> None:
    response = client.post("/todos", json={"title": "ok", "created_by_ip": "10.0.0.1"})
    assert response.status_code == 422, response.text


def test_route_options_name_only_endpoints_of_the_api() -> None:
    import pytest

    from app.main import create_app

    def not_an_endpoint() -> None: ...

    with pytest.raises(ValueError, match="not endpoints of the todo API: not_an_endpoint"):
        create_app(route_options={not_an_endpoint: {"response_model": None}})


def test_the_todo_routes_are_declared_on_the_app_itself(client: TestClient) -> None:
    """Not an included router: FastAPI 0.165 matches a request against an included router's routes twice
    (README "Performance")."""
    paths = {getattr(route, "path", None) for route in client.app.router.routes}  # type: ignore[attr-defined]
    assert {"/todos", "/todos/count", "/todos/{todo_id}"} <= paths, paths


def test_created_at_is_utc_with_its_offset_for_new_and_old_rows(client: TestClient, sqlite_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine, text

    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # as the seed's app wrote rows: CURRENT_TIMESTAMP (UTC), no offset stored
        conn.execute(text("INSERT INTO todos (title, completed) VALUES ('from the old app', 0)"))
    engine.dispose()
    new = _create(client)
    for todo in client.get("/todos").json():
        stamp = todo["created_at"]
        assert stamp.endswith("Z"), stamp  # RFC 3339 requires an offset; UTC is written Z
        assert abs(datetime.fromisoformat(stamp) - datetime.now(UTC)) < timedelta(minutes=5), stamp
    assert client.get(f"/todos/{new['id']}").json()["created_at"] == new["created_at"]


def test_patch_document_does_not_call_its_fields_nullable(client: TestClient) -> None:
    fields = client.get("/openapi.json").json()["components"]["schemas"]["TodoUpdate"]["properties"]
    for name, field in fields.items():
        assert "null" not in str(field) and "anyOf" not in field, (name, field)


def test_booleans_are_strict_like_the_document(client: TestClient) -> None:
    for completed in (0, 1, "yes", "true", "1"):
        response = client.post("/todos", json={"title": "t", "completed": completed})
        assert response.status_code == 422, (completed, response.text)
    todo = _create(client)
    assert client.patch(f"/todos/{todo['id']}", json={"completed": 1}).status_code == 422


def test_a_whole_number_written_as_a_float_is_an_integer(client: TestClient) -> None:
    """JSON Schema counts 86.0 as an integer; so does the app. 86.5 is not one."""
    assert _create(client, priority=86.0)["priority"] == 86
    todo = _create(client)
    assert client.patch(f"/todos/{todo['id']}", json={"priority": 1e2}).json()["priority"] == 100
    for priority in (86.5, 100.0000001, 101.0):
        assert client.post("/todos", json={"title": "t", "priority": priority}).status_code == 422, priority


def test_a_body_that_is_not_text_gets_the_documented_400(client: TestClient) -> None:
    response = client.post("/todos", content=b'{"title": "\x80"}', headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    paths = client.get("/openapi.json").json()["paths"]
    for operation in (paths["/todos"]["post"], paths["/todos/{todo_id}"]["patch"]):
        assert {"400", "413", "422"} <= set(operation["responses"]), operation["responses"]


def test_title_rule_invisible_characters_alone_and_bidi_controls_are_refused(client: TestClient) -> None:
    for title in ("\u200b", "\ufeff", "\u00a0", "\u200b\ufeff \u00a0", "a\u202eb", "x\u2066y", "a\u2028b"):
        response = client.post("/todos", json={"title": title})
        assert response.status_code == 422, (title, response.text)
    assert _create(client, title="\u200bx")["title"] == "\u200bx"  # a visible character makes it a title
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # zero-width joiners inside an emoji are fine
    assert _create(client, title=family)["title"] == family
    assert _create(client, title="\u00a0 café \u00a0")["title"] == "café"


def test_title_pattern_in_the_document_is_the_rule_the_app_applies(client: TestClient) -> None:
    import re

    title = client.get("/openapi.json").json()["components"]["schemas"]["TodoCreate"]["properties"]["title"]
    pattern = re.compile(title["pattern"])
    for text_ in ("\u200b", "\u00a0", "a\u202eb", "ok", "\u200bx", " ok "):
        accepted = client.post("/todos", json={"title": text_}).status_code == 201
        assert accepted == bool(pattern.fullmatch(text_)), (text_, accepted)


def test_a_lone_surrogate_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post("/todos", content=b'{"title": "\\ud800x"}', headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "\\ud800" in response.text


def test_list_is_paginated_with_offset_and_limit(client: TestClient) -> None:
    ids = [_create(client, title=f"t{i}")["id"] for i in range(5)]
    page = lambda **params: [t["id"] for t in client.get("/todos", params=params).json()]  # noqa: E731
    assert page() == ids  # fewer than a page: the plain list, as before
    assert page(limit=2) == ids[:2]
    assert page(offset=2, limit=2) == ids[2:4]
    assert page(offset=4) == ids[4:]
    assert page(offset=5) == []
    for params in ({"limit": 101}, {"limit": 0}, {"offset": -1}):
        assert client.get("/todos", params=params).status_code == 422, params
    limit = next(
        p for p in client.get("/openapi.json").json()["paths"]["/todos"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (100, 100), limit


def test_the_first_page_holds_100_todos(client: TestClient) -> None:
    for i in range(101):
        client.post("/todos", json={"title": f"t{i}"})
    assert len(client.get("/todos").json()) == 100
    assert len(client.get("/todos", params={"offset": 100}).json()) == 1


class _Captured(Exception):
    """Raised by a ``do_connect`` listener: what the driver would have been given, without connecting."""


def _connect_params(engine: object) -> dict[str, object]:
    from sqlalchemy import Engine, event

    sync_engine: Engine = getattr(engine, "sync_engine", engine)  # type: ignore[assignment]

    def capture(dialect: object, record: object, cargs: object, cparams: dict[str, object]) -> None:
        raise _Captured(cparams)

    event.listen(sync_engine, "do_connect", capture)
    try:
        with pytest.raises(_Captured) as captured:
            sync_engine.connect()
    finally:
        sync_engine.dispose()
    params: dict[str, object] = captured.value.args[0]
    return params


@pytest.mark.parametrize(
    ("env", "sync_options", "async_settings"),
    [(None, "-c statement_timeout=30000", {"statement_timeout": "30000"}), ("1500", "-c statement_timeout=1500",
     {"statement_timeout": "1500"}), ("0", None, None)],
)  # fmt: skip
def test_on_postgresql_every_connection_has_a_statement_timeout(
    env: str | None, sync_options: str | None, async_settings: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.async_database import make_async_engine
    from app.database import make_engine

    if env is not None:
        monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", env)
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    assert _connect_params(make_engine(url)).get("options") == sync_options
    assert _connect_params(make_async_engine(url)).get("server_settings") == async_settings
    # A fault or a fix changes only what it names: the timeout stays beside other connect_args, or is replaced.
    merged = _connect_params(make_async_engine(url, connect_args={"command_timeout": 2}))
    assert (merged.get("command_timeout"), merged.get("server_settings")) == (2, async_settings)
    none = _connect_params(make_engine(url, connect_args={"options": "-c statement_timeout=0"}))
    assert none["options"] == "-c statement_timeout=0"


def test_sqlite_gets_no_statement_timeout(sqlite_url: str) -> None:
    from app.database import make_engine

    assert "options" not in _connect_params(make_engine(sqlite_url))


@pytest.mark.parametrize("bad", ["abc", "-1"])
def test_a_bad_statement_timeout_is_refused_with_its_name(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import settings

    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", bad)
    with pytest.raises(ValueError, match="DB_STATEMENT_TIMEOUT_MS"):
        settings.statement_timeout_ms()
