"""Every finding points to the line that caused it (issue 24), on real servers: the doctor's fixture apps and the
catalogue's faults, the expected line found in the fixture's own source, never written down here."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faultlab.variants import PROJECT_ROOT
from tests.doctor_runs import DoctorRun, DoctorRuns
from tests.lab_cli import run_lab

APPS = Path(__file__).parent / "fixtures" / "doctor_apps"


def _line_of(path: Path, text: str) -> int:
    """The number of the one line of ``path`` that holds ``text``."""
    (number,) = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line]
    return number


def _doctor(target: str, app_dir: Path, doctor_runs: DoctorRuns) -> tuple[DoctorRun, dict[str, Any], Path]:
    """The session's checkup of ``target`` (shared with tests/test_doctor.py), its report and its report dir."""
    result = doctor_runs.get(target, app_dir)
    (out,) = result.out.glob("doctor-*")
    return result, result.report, out


def test_a_leak_names_the_dependency_that_returns_the_session_once_for_every_route(doctor_runs: DoctorRuns) -> None:
    result, report, out = _doctor("shop_leaky:api", APPS, doctor_runs)
    line = _line_of(APPS / "shop_leaky.py", "return Session(shop_engine)")
    leaks = [f for f in report["findings"] if f["kind"] == "connection leak"]
    assert len(leaks) == 1, leaks  # one cause, many routes
    (leak,) = leaks
    assert set(leak["operations"]) == {"GET /items", "POST /items", "GET /items/{item_id}"}, leak
    where = leak["location"]
    assert (where["file"], where["line"], where["function"]) == ("shop_leaky.py", line, "session_never_closed"), leak
    taken = _line_of(APPS / "shop.py", "return list(s.exec(select(Item)))")
    assert f"checked out at shop.py:{taken} in all_items" in leak["evidence"], leak["evidence"]
    (exhausted,) = [f for f in report["findings"] if f["kind"] == "pool exhausted"]
    assert exhausted["location"] == where, exhausted
    # The reports carry it: Markdown names the line, HTML links it to the escaped source around it.
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert f"`shop_leaky.py:{line} in session_never_closed`" in markdown, markdown
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'href="#source-0"' in page and 'id="source-0"' in page, page
    assert html.escape("return Session(shop_engine)  # planted: nobody closes it") in page, page
    assert result.returncode == 1


def test_the_sql_tutorial_app_leak_names_get_session_on_the_terminal(tmp_path: Path) -> None:
    result = run_lab("doctor", "heroes_leaky:app", "--app-dir", APPS, "--out", tmp_path / "o", cwd=tmp_path)
    line = _line_of(APPS / "heroes_leaky.py", "return Session(engine)")
    assert f"at heroes_leaky.py:{line} in get_session" in result.stdout, result.stdout
    (heading,) = [x for x in result.stdout.splitlines() if "connection leak on " in x]  # one finding, three routes
    assert all(route in heading for route in ("POST /heroes/", "GET /heroes/,", "GET /heroes/{hero_id}")), heading
    assert result.returncode == 1


def test_missing_yield_names_its_dependency_in_the_checkout_root(doctor_runs: DoctorRuns) -> None:
    _, report, _ = _doctor("faults.missing_yield:app", PROJECT_ROOT, doctor_runs)
    line = _line_of(PROJECT_ROOT / "faults" / "missing_yield.py", "return SessionLocal()")
    (leak,) = [f for f in report["findings"] if f["kind"] == "connection leak"]
    assert {"GET /todos", "GET /todos/count", "POST /todos"} <= set(leak["operations"]), leak
    where = leak["location"]
    assert (where["file"], where["line"]) == ("faults/missing_yield.py", line), leak
    assert where["function"] == "get_db_without_yield", leak


def test_n_plus_one_names_the_query_and_the_attribute_and_the_loader_option(doctor_runs: DoctorRuns) -> None:
    _, report, _ = _doctor("faults.n_plus_one:app", PROJECT_ROOT, doctor_runs)
    line = _line_of(PROJECT_ROOT / "faults" / "n_plus_one.py", "return list(db.scalars(query))")
    (grows,) = [f for f in report["findings"] if f["kind"] == "statements grow with rows"]
    where = grows["location"]
    assert (where["file"], where["line"], where["function"]) == ("faults/n_plus_one.py", line, "list_todos_lazily")
    assert "Todo.tags loaded lazily" in grows["evidence"], grows
    assert ".options(selectinload(Todo.tags))" in grows["evidence"] + where["role"], grows
    # Observing the lazy loads changed nothing: every other operation answered as it does unobserved.
    assert [f["kind"] for f in report["findings"]] == ["statements grow with rows"], report["findings"]


def test_a_server_error_names_the_line_that_raised(doctor_runs: DoctorRuns) -> None:
    _, report, out = _doctor("shop_failing:api", APPS, doctor_runs)
    line = _line_of(APPS / "shop_failing.py", 'raise RuntimeError("planted')
    (error,) = [f for f in report["findings"] if f["kind"] == "server error"]
    where = error["location"]
    assert (where["file"], where["line"], where["function"]) == ("shop_failing.py", line, "broken_report"), error
    assert f"`shop_failing.py:{line} in broken_report`" in (out / "report.md").read_text(encoding="utf-8")


def test_two_causes_stay_two_and_a_dependency_that_queries_joins_the_sessions_cause(doctor_runs: DoctorRuns) -> None:
    """GET /summary's connection is taken in ``item_count``, a dependency FastAPI calls (the route is not on the
    stack), with the session of the leaking dependency: the same cause as the routes that take it directly. The
    route that opens a session of its own is another cause, and stays another finding."""
    _, report, _ = _doctor("shop_two_leaks:api", APPS, doctor_runs)
    source = APPS / "shop_two_leaks.py"
    # The route's own session takes its connection at its first statement, not where it is made.
    returned, own = _line_of(source, "return Session(shop_engine)"), _line_of(source, "own.exec(select(Item)")
    leaks = {f["location"]["line"]: f for f in report["findings"] if f["kind"] == "connection leak"}
    assert sorted(leaks) == sorted([returned, own]), report["findings"]
    assert {leak["location"]["file"] for leak in leaks.values()} == {"shop_two_leaks.py"}, leaks
    assert set(leaks[returned]["operations"]) == {"GET /items", "GET /summary", "POST /items", "GET /items/{item_id}"}
    assert leaks[returned]["location"]["function"] == "session_never_closed", leaks[returned]
    assert (leaks[own]["operations"], leaks[own]["location"]["function"]) == (["GET /cheapest"], "cheapest")


def test_a_finding_without_a_line_says_why_in_every_report() -> None:
    from faultlab.doctor.html import render_doctor_html
    from faultlab.doctor.markdown import render_doctor_markdown
    from faultlab.doctor.report import Finding, Report

    why = "the exception passed through no line of the app's code"
    report = Report("x:app", "sqlite", findings=[Finding("implicit IO", "GET /a", "500", unlocated=why)])
    assert report.findings[0].where == f"line: n/a ({why})"
    assert f"Line: n/a ({why})." in render_doctor_markdown(report)
    assert f"line: n/a ({why})" in html.unescape(render_doctor_html(report))
    assert report.as_json()["findings"][0]["unlocated"] == why


def test_implicit_io_names_what_the_request_was_loading_or_says_why_not(tmp_path: Path) -> None:
    """The lines an implicit-IO finding can name, from the harness's note of the request's load, in order."""
    from faultlab.doctor.checks.implicit_io import _cause

    class Live:
        pool = True

    class Context:
        live, app_dir = Live(), tmp_path

    query = {"file": str(tmp_path / "books.py"), "line": 9, "function": "all"}
    commit = {"file": str(tmp_path / "books.py"), "line": 97, "function": "add"}
    lazy = {"kind": "lazy load", "attribute": "Author.books", "read_at": None, "query_at": query}
    where, why, _ = _cause(Context(), lazy, None)  # type: ignore[arg-type]
    assert (str(where), why) == ("books.py:9 in all", "") and "selectinload(Author.books)" in where.role  # type: ignore[union-attr]
    expired = {"kind": "expired columns", "class": "Author", "read_at": None, "commit_at": commit}
    where, why, _ = _cause(Context(), expired, None)  # type: ignore[arg-type]
    assert str(where) == "books.py:97 in add" and "expire_on_commit" in where.role  # type: ignore[union-attr]
    where, why, _ = _cause(Context(), {**expired, "commit_at": None}, None)  # type: ignore[arg-type]
    assert where is None and "no commit of the request's session" in why, why
    where, why, _ = _cause(Context(), None, None)  # type: ignore[arg-type]
    assert where is None and "passed through no line of the app's code" in why, why


@pytest.mark.parametrize(
    ("target", "app_dir", "file", "flushed", "function", "ended"),
    [
        # Sync: the session's end is the app's dependency, on the stack when it closes.
        ("faults.no_commit:app", PROJECT_ROOT, "faults/no_commit.py", "db.flush()", "create_todo_without_commit",
         "at app/database.py:"),
        # Async: AsyncSession closes in a task of its own, so no line of the app's is on the stack then.
        ("books_unsaved:api", APPS, "books_unsaved.py", "await db.flush()", "add_author_unsaved",
         "when the session ended (no line of the app's code on the stack)"),
    ],
    ids=["sync", "async"],
)  # fmt: skip
def test_a_create_that_never_commits_names_the_line_that_flushed_it(
    target: str, app_dir: Path, file: str, flushed: str, function: str, ended: str, doctor_runs: DoctorRuns
) -> None:
    _, report, out = _doctor(target, app_dir, doctor_runs)
    (lost,) = [f for f in report["findings"] if f["kind"] == "created, then not found"]
    where = lost["location"]
    line = _line_of(app_dir / file, flushed)
    assert (where["file"], where["line"], where["function"]) == (file, line, function), lost
    assert "flushed here, never committed" in where["role"] and ended in where["role"], where
    assert "rolled back " + ended in lost["evidence"], lost["evidence"]
    assert f"`{file}:{line} in {function}`" in (out / "report.md").read_text(encoding="utf-8")


def test_a_lost_write_without_a_rollback_seen_names_the_create_s_endpoint_or_says_why(tmp_path: Path) -> None:
    """The harness saw no write of the create rolled back (it may write to another database): its endpoint's
    ``def`` line, said to be that; with no endpoint known either, no line, and why."""
    from types import SimpleNamespace

    from faultlab.doctor.checks.answers import _lost_at

    endpoint = {"file": str(tmp_path / "api.py"), "line": 12, "function": "create"}
    sites = {"endpoints": {"POST /a": endpoint}}
    ctx: Any = SimpleNamespace(app_dir=tmp_path, live=SimpleNamespace(sites=lambda: sites))
    where, why, seen = _lost_at(ctx, "POST /a")
    assert seen.startswith("; none of its writes was seen rolled back"), seen
    assert str(where) == "api.py:12 in create" and why == "", (where, why)
    assert where is not None and where.role.startswith("the create's endpoint: none of its writes was seen rolled back")
    ctx.live.sites = lambda: {"uncommitted": [], "endpoints": {}}
    where, why, _ = _lost_at(ctx, "POST /a")
    assert where is None and "no route of the app has an endpoint for POST /a" in why, why


def test_a_shared_session_names_the_line_that_was_refused_and_the_global_that_holds_it(doctor_runs: DoctorRuns) -> None:
    _, report, _ = _doctor("books_shared:api", APPS, doctor_runs)
    (shared,) = [f for f in report["findings"] if f["kind"] == "shared session"]
    where = shared["location"]
    assert (where["file"], where["function"]) == ("books.py", "add_author"), shared
    assert where["line"] == _line_of(APPS / "books.py", "await db.commit()"), where
    assert "held by a module global: books_shared.shared" in shared["evidence"], shared["evidence"]


def test_a_server_error_once_rows_exist_names_the_line_that_raised(doctor_runs: DoctorRuns) -> None:
    _, report, _ = _doctor("shop_prices:api", APPS, doctor_runs)
    (error,) = [f for f in report["findings"] if f["kind"] == "server error"]
    assert error["operation"] == "GET /prices" and "once they made rows" in error["evidence"], error
    where = error["location"]
    assert (where["file"], where["line"]) == ("shop_prices.py", _line_of(APPS / "shop_prices.py", "item.currency"))


def test_a_leak_the_os_sees_outside_any_engine_says_why_it_has_no_line(doctor_runs: DoctorRuns) -> None:
    _, report, out = _doctor("notes_leaky:api", APPS, doctor_runs)
    leaks = [f for f in report["findings"] if f["kind"] == "connection leak (seen by the OS)"]
    assert leaks and all(f["location"] is None for f in leaks), leaks
    why = "no checkout was recorded: the doctor watches no SQLAlchemy engine"
    assert all(f["unlocated"].startswith(why) for f in leaks), leaks
    assert "Line: n/a (no checkout was recorded" in (out / "report.md").read_text(encoding="utf-8")


def test_schema_drift_names_the_model_s_line_that_declares_the_column(tmp_path: Path) -> None:
    """The SQLModel shop against a database whose ``item`` lacks ``price_cents`` and that has a table of its own:
    the column's line, and n/a with why for the table no model declares."""
    import sqlite3

    database = tmp_path / "yours.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE item (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR NOT NULL)")
        connection.execute("CREATE TABLE legacy (id INTEGER PRIMARY KEY)")
    connection.close()
    result = run_lab(
        "doctor", "shop:api", "--app-dir", APPS, "--compare-db", f"sqlite:///{database}", "--json",
        "--out", tmp_path / "o", cwd=tmp_path,
    )  # fmt: skip
    drift = {f["evidence"]: f for f in json.loads(result.stdout)["findings"] if f["kind"] == "schema drift"}
    column = drift["column item.price_cents: in the models, not in the database"]
    where = column["location"]
    assert (where["file"], where["function"]) == ("shop.py", "Item"), column
    source = (APPS / "shop.py").read_text(encoding="utf-8").splitlines()
    item = _line_of(APPS / "shop.py", "class Item(SQLModel, table=True)")  # not ItemIn's field of the same name
    assert where["line"] == next(n for n in range(item, len(source)) if "price_cents" in source[n - 1]), where
    legacy = drift["table legacy: in the database, not in the models"]
    assert legacy["location"] is None and "no model declares it" in legacy["unlocated"], legacy


def test_schema_drift_in_an_async_app_s_models_names_the_class_or_the_column(tmp_path: Path) -> None:
    """The async books app's models (plain declarative), compared without serving it (``faultlab.doctor.drift``):
    a column the database lacks at its line, a column only the database has at the class's line."""
    import sqlite3

    database = tmp_path / "yours.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE authors (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(50) NOT NULL)")
        connection.execute(
            "CREATE TABLE books (id INTEGER NOT NULL PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES authors(id),"
            " isbn TEXT)"
        )
    connection.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APPS), str(PROJECT_ROOT)])}
    env["FAULTLAB_COMPARE_URL"] = f"sqlite:///{database}"
    done = subprocess.run(
        [sys.executable, "-m", "faultlab.doctor.drift", "books"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    found = {d["text"]: d for d in json.loads(done.stdout.strip().splitlines()[-1])["differences"]}
    title = found["column books.title: in the models, not in the database"]
    assert title["where"]["line"] == _line_of(APPS / "books.py", "title: Mapped[str]"), title
    isbn = found["column books.isbn: in the database, not in the models"]
    book = _line_of(APPS / "books.py", "class Book(")
    assert (isbn["where"]["function"], isbn["where"]["line"]) == ("Book", book), isbn


def test_what_the_app_said_is_text_in_the_markdown_report() -> None:
    """An exception's message is the app's: a link, emphasis, a backtick or HTML in it stay text."""
    from faultlab.doctor.markdown import render_doctor_markdown
    from faultlab.doctor.report import Finding, Report

    said = "ValueError: see [here](http://evil.example) *now* `oops <img src=x> a|b"
    markdown = render_doctor_markdown(Report("x:app", "sqlite", findings=[Finding("server error", "GET /a", said)]))
    assert r"see \[here\](http://evil.example) \*now\* \`oops \<img src=x\> a\|b" in markdown, markdown
