"""The doctor on async apps (``AsyncSession``, aiosqlite and asyncpg): an app of its own style, clean, with a
leaky dependency, and with implicit IO (``MissingGreenlet``) planted two ways; and the catalogue's async app
and its lazy-load fault. Real servers, one checkup each (~4-6 s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faultlab.variants import PROJECT_ROOT
from tests.lab_cli import run_lab

APPS = Path(__file__).parent / "fixtures" / "doctor_apps"


def _checkup(target: str, app_dir: Path, tmp_path: Path, *options: str) -> tuple[dict[str, Any], int]:
    result = run_lab(
        "doctor", target, "--app-dir", app_dir, *options, "--json", "--out", tmp_path / "out", cwd=tmp_path
    )
    assert result.stdout, result.stderr[-2000:]
    return json.loads(result.stdout), result.returncode


def _line_of(fixture: str, text: str) -> int:
    """The line of ``text`` in a fixture app's source, counted from 1 (so the test follows an edit of it)."""
    lines = (APPS / fixture).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def _on_postgresql() -> list[str]:
    from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem

    if problem := postgres_problem(DEFAULT_POSTGRES_URL):
        pytest.skip(problem)
    return ["--db", "postgresql"]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_the_clean_async_app_gives_nothing(db: str, tmp_path: Path) -> None:
    options = _on_postgresql() if db == "postgresql" else []
    report, code = _checkup("books:api", APPS, tmp_path, *options)
    assert (report["findings"], report["not_checked"], code) == ([], [], 0), report
    assert ("+aiosqlite" if db == "sqlite" else "+asyncpg") in report["engine_url"], report["engine_url"]
    if db == "postgresql":  # read on a connection of the AsyncEngine's own pool, in one of SQLAlchemy's greenlets
        assert "SHOW statement_timeout on a pooled connection: 30s" in [c["operation"] for c in report["checked"]]


def test_a_leak_in_an_async_app_is_found_at_the_dependency_that_returns_the_session(tmp_path: Path) -> None:
    report, code = _checkup("books_leaky:api", APPS, tmp_path)
    (leak,) = [f for f in report["findings"] if f["kind"] == "connection leak"]
    assert {"GET /authors", "GET /authors/{author_id}"} <= set(leak["operations"]), leak
    assert (leak["location"]["file"], leak["location"]["function"]) == ("books_leaky.py", "get_db_never_closed")
    assert leak["location"]["line"] == _line_of("books_leaky.py", "return sessions()"), leak["location"]
    (reads,) = [c for c in report["checked"] if c["operation"] == "GET /authors"]
    assert reads["checked_out"] == [0, 1, 2, 3, 4], reads
    # The create commits (its connection goes back): after the collector terminated the leaked ones, the async
    # pool reopens them one checkout at a time, which the OS sees climb; that is no leak of the create's.
    assert not [f for f in report["findings"] if "POST /authors" in f["operations"] and "leak" in f["kind"]], report
    assert code == 1


@pytest.mark.parametrize(
    ("target", "operation", "where"),
    [
        ("books_lazy:api", "GET /authors", ("books_lazy.py", "all_authors_lazily", "planted: no selectinload")),
        # The commit that expired the new author, which the response then reads outside an await.
        ("books_expired:api", "POST /authors", ("books.py", "add_author", "await db.commit()")),
    ],
)
def test_implicit_io_in_an_async_app_is_a_finding_of_its_own(
    target: str, operation: str, where: tuple[str, str, str], tmp_path: Path
) -> None:
    report, code = _checkup(target, APPS, tmp_path)
    kinds = [(f["kind"], f["operation"]) for f in report["findings"]]
    assert kinds == [("implicit IO", operation)], kinds  # not a server error, and not blamed on the pool
    evidence = report["findings"][0]["evidence"]
    for said in ("MissingGreenlet", "outside an `await`", "selectinload", "expire_on_commit=False", "session.refresh"):
        assert said in evidence, evidence
    location = report["findings"][0]["location"]
    file, function, text = where
    assert (location["file"], location["function"]) == (file, function), location
    assert location["line"] == _line_of(file, text), location
    assert code == 1


def test_implicit_io_on_asyncpg_is_not_taken_for_n_plus_one(tmp_path: Path) -> None:
    """On asyncpg the refused lazy loads are counted as statements before the driver refuses them: the read
    that failed says nothing of statements per row."""
    report, code = _checkup("books_lazy:api", APPS, tmp_path, *_on_postgresql())
    kinds = [(f["kind"], f["operation"]) for f in report["findings"]]
    assert kinds == [("implicit IO", "GET /authors")] and code == 1, kinds


@pytest.mark.parametrize(
    ("target", "found"), [("app.async_main:app", []), ("faults.async_lazy_load:app", [("implicit IO", "GET /todos")])]
)
def test_the_catalogue_async_app_and_its_lazy_load(target: str, found: list[tuple[str, str]], tmp_path: Path) -> None:
    report, code = _checkup(target, PROJECT_ROOT, tmp_path)
    assert [(f["kind"], f["operation"]) for f in report["findings"]] == found, report["findings"]
    assert code == (1 if found else 0), report["not_checked"]
    if found:  # the query whose rows load the tags lazily: where selectinload goes
        where = report["findings"][0]["location"]
        source = (PROJECT_ROOT / "faults" / "async_lazy_load.py").read_text(encoding="utf-8").splitlines()
        line = next(n for n, text in enumerate(source, 1) if "# BUG" in text)
        assert (where["file"], where["line"]) == ("faults/async_lazy_load.py", line), where
        assert "selectinload(Todo.tags)" in where["role"], where
    (burst,) = [c for c in report["checked"] if c["operation"] == "POST /todos, 10 at once"]
    assert burst["statuses"] == [201] * 10, burst  # a session per request holds any concurrency


def test_one_session_shared_by_every_request_is_found_by_a_burst_of_creates(tmp_path: Path) -> None:
    """The catalogue's async-shared-session: one at a time every create answers 201; ten at once, SQLAlchemy
    refuses the concurrent commits."""
    report, code = _checkup("faults.async_shared_session:app", PROJECT_ROOT, tmp_path)
    (shared,) = [f for f in report["findings"] if f["kind"] == "shared session"]
    assert shared["operation"] == "POST /todos" and "IllegalStateChangeError" in shared["evidence"], shared
    assert "one session per request" in shared["evidence"], shared["evidence"]
    # Where (tests/test_doctor_lines.py has the fixture app's): the global that holds it, and a line of the app's.
    assert "held by a module global: faults.async_shared_session.shared_session" in shared["evidence"], shared
    assert shared["location"]["file"].startswith("app/"), shared["location"]
    (create,) = [c for c in report["checked"] if c["operation"] == "POST /todos"]
    assert set(create["statuses"]) == {201}, create
    assert code == 1
