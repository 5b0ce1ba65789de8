"""Every finding points to the line that caused it (issue 24), on real servers: the doctor's fixture apps and the
catalogue's faults, the expected line found in the fixture's own source, never written down here."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

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
