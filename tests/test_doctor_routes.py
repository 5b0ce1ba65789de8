"""How the doctor finds and sends an app's routes: the OpenAPI document from the app's own ``openapi_url`` (or
``--openapi``), requests generated from its schemas (formats, forms), every operation exercised or listed as not
checked with why, ids from lists when nothing can be created, and the pool's checks only on routes that run SQL."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.lab_cli import run_lab

APPS = Path(__file__).parent / "fixtures" / "doctor_apps"


def _document() -> dict[str, Any]:
    import sys

    sys.path.insert(0, str(APPS))
    try:
        from api_v1 import api

        return api.openapi()
    finally:
        sys.path.remove(str(APPS))


def test_requests_honour_formats_forms_and_are_the_same_on_every_run() -> None:
    from faultlab.doctor.openapi import FORM, operations
    from faultlab.doctor.values import Values

    document = _document()
    ops = operations(document)
    made, again = Values(document, ops), Values(document, ops)
    assert made.problems == {} and made.requests == again.requests
    by_label = {o.label: made.request(o) for o in ops}
    user = by_label["POST /api/v1/users/"].body
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", user["email"]), user
    assert uuid.UUID(user["key"]) and datetime.fromisoformat(user["joined"]), user
    login = by_label["POST /api/v1/login/access-token"]
    assert login.media_type == FORM and login.body["username"] and login.body["password"], login
    assert "data" in login.httpx_kwargs() and "json" not in login.httpx_kwargs()


def test_every_operation_is_planned_or_says_why_not() -> None:
    from faultlab.doctor.openapi import operations, plan

    document = {
        "paths": {
            "/things": {"get": {}, "delete": {}, "head": {}},
            "/things/{thing_id}": {"get": {}, "patch": {}, "delete": {}},
            "/me": {"patch": {}, "put": {"requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}}}}},
        }
    }
    planned = plan(operations(document))
    assert [o.label for o in planned] == [
        "GET /things",
        "PATCH /me",
        "GET /things/{thing_id}",
        "PATCH /things/{thing_id}",
        "DELETE /things/{thing_id}",
        "DELETE /things",
        "PUT /me",
        "HEAD /things",
    ]
    assert [o.unsendable for o in planned[-2:]] == [
        "its body is text/plain; the doctor makes JSON, form and multipart bodies only",
        "the doctor sends GET, POST, PUT, PATCH, DELETE only",
    ]


def test_ids_come_from_a_create_or_a_paginated_list() -> None:
    from faultlab.doctor.ids import Ids, first_listed

    ids = Ids()
    ids.keep("/api/v1/items", first_listed({"data": [{"id": 7, "title": "x"}], "count": 1}), "listed")
    ids.keep("/api/v1/items", {"id": 8}, "created")  # the first one seen stays
    assert ids.for_collection("/api/v1/items/7/tags") == ids.for_collection("/api/v1/items")
    assert (ids.for_collection("/api/v1/items").value, ids.for_collection("/api/v1/users")) == (7, None)


def test_an_api_under_a_prefix_is_found_from_its_openapi_url_and_every_route_exercised(tmp_path: Path) -> None:
    result = run_lab("doctor", "api_v1:api", "--app-dir", APPS, "--json", "--out", tmp_path / "o", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert report["openapi"] == "/api/v1/openapi.json on your app (the app's openapi_url)", report["openapi"]
    statuses = {c["operation"]: c["statuses"] for c in report["checked"]}
    expected = {f"{m.upper()} {p}" for p, item in _document()["paths"].items() for m in item}
    assert expected <= set(statuses), (expected - set(statuses), report["not_checked"])
    assert statuses["POST /api/v1/users/"][0] == 201, statuses  # email, UUID and date-time accepted
    assert statuses["POST /api/v1/login/access-token"] == [200] * 4, statuses  # the form, its fields not empty
    assert statuses["PATCH /api/v1/users/me"] == [200] * 4 and statuses["DELETE /api/v1/notes/"] == [204]
    assert statuses["GET /api/v1/items/{item_id}"] == [200] * 4, statuses  # the seeded item's id, from the list
    ran = {c["operation"]: c["statements"] for c in report["checked"] if c["operation"] in expected}
    assert all(ran.values()) and ran["GET /api/v1/health"][0] == 0 and ran["POST /api/v1/notes/"][0] >= 1, ran
    # The pool's budget on a read that runs SQL, never on the health route that answers whatever the pool does.
    assert report["pool_route"] == "GET /api/v1/items/ (1 SQL statement(s) per request)", report["pool_route"]
    assert not any(c["operation"].startswith("GET /api/v1/health,") for c in report["checked"]), report["checked"]
    assert (report["verdict"], result.returncode) == ("nothing found", 0), (report["findings"], report["not_checked"])


def test_an_app_without_routes_is_a_usage_error_that_says_what_to_do(tmp_path: Path) -> None:
    result = run_lab("doctor", "no_routes:api", "--app-dir", APPS, "--json", cwd=tmp_path)
    error = json.loads(result.stdout)["error"]
    assert result.returncode == 2 and "lists no operation the doctor can send" in error, error
    assert "--openapi PATH" in error, error


def test_openapi_given_as_a_file_and_pool_checks_that_could_not_run_say_why(tmp_path: Path) -> None:
    document = _document()
    document["paths"] = {"/api/v1/health": document["paths"]["/api/v1/health"]}
    given = tmp_path / "openapi.json"
    given.write_text(json.dumps(document), encoding="utf-8")
    result = run_lab(
        "doctor", "api_v1:api", "--app-dir", APPS, "--openapi", given, "--json", "--out", tmp_path / "o", cwd=tmp_path
    )
    report = json.loads(result.stdout)
    assert report["openapi"] == f"the file {given}" and [c["operation"] for c in report["checked"]] == [
        "GET /api/v1/health"
    ], report
    (budget,) = [e for e in report["not_checked"] if e["check"] == "pool budget"]
    assert "no collection read that answers 2xx ran a SQL statement (GET /api/v1/health: none" in budget["reason"]
    assert (report["verdict"], result.returncode) == ("incomplete", 3), report["not_checked"]
    missing = run_lab("doctor", "api_v1:api", "--app-dir", APPS, "--openapi", "nope.json", cwd=tmp_path)
    assert missing.returncode == 2 and "--openapi nope.json: no such file" in missing.stderr, missing.stderr


def test_a_blocking_async_route_with_thread_pool_dependencies_is_found(tmp_path: Path) -> None:
    """Its ``def get_db`` runs in the thread pool (the loop free), then the route blocks the loop 0.3 s: found,
    and only there; the benchmark (benchmarks/bench_event_loop.py) measures how reliably."""
    target = "shop_blocking_deps:api"
    result = run_lab("doctor", target, "--app-dir", APPS, "--json", "--out", tmp_path / "o", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert [(f["kind"], f["operation"]) for f in report["findings"]] == [("event loop blocked", "GET /stats")], report
    (stats,) = [c for c in report["checked"] if c["operation"] == "GET /stats"]
    assert stats["stalled_ms"] >= stats["took_ms"] / 2 and stats["took_ms"] >= 290, stats
    assert result.returncode == 1
