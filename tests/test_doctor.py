"""The doctor on real servers: the catalogue's leaking variants are found on the operations that leak, the
correct app and a clean app of another style give nothing, and a planted leak in that app is found."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from faultlab.doctor.checks.restart import OWN_CLUSTER_REMEDY
from faultlab.variants import PROJECT_ROOT
from tests.doctor_runs import DoctorRuns
from tests.lab_cli import run_lab

APPS = Path(__file__).parent / "fixtures" / "doctor_apps"

# target, where it is imported from, the operations that must be found leaking (empty: nothing at all)


def _doctor(*args: str | Path, cwd: Path, **kwargs: Any) -> Any:
    """The doctor on the lab's own example (``app``, ``faults``), imported from this checkout as a project of its
    own: the doctor never puts the lab's checkout on an app's import path by itself."""
    return run_lab("doctor", *args, "--app-dir", PROJECT_ROOT, cwd=cwd, **kwargs)


def _line_of(path: Path, text: str) -> int:
    """The number of the one line of ``path`` that holds ``text``."""
    (number,) = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line]
    return number


CASES = {
    "the correct app": ("app.main:app", PROJECT_ROOT, set()),
    "missing-yield": ("faults.missing_yield:app", PROJECT_ROOT, {"GET /todos", "GET /todos/count", "POST /todos"}),
    "return-with-finally": ("faults.return_with_finally:app", PROJECT_ROOT, {"GET /todos", "GET /todos/count"}),
    "SQLModel shop, clean": ("shop:api", APPS, set()),
    "SQLModel shop, planted leak": ("shop_leaky:api", APPS, {"GET /items", "POST /items", "GET /items/{item_id}"}),
}


@pytest.mark.parametrize(("target", "grows"), [("faults.n_plus_one:app", True), ("app.main:app", False)])
def test_statements_that_grow_with_the_rows_are_found(target: str, grows: bool, doctor_runs: DoctorRuns) -> None:
    report = doctor_runs.get(target, PROJECT_ROOT).report
    found = [f["operation"] for f in report["findings"] if f["kind"] == "statements grow with rows"]
    (listing,) = [c for c in report["checked"] if c["operation"] == "GET /todos"]
    first, later = listing["statements"]
    if grows:
        assert found == ["GET /todos"] and later >= first + 3, listing  # one more per row made
    else:
        assert found == [] and later <= first + 1, listing  # selectinload: one query for all the tags


def test_a_route_that_blocks_the_event_loop_is_found_and_only_that_one(tmp_path: Path) -> None:
    result = run_lab("doctor", "shop_blocking:api", "--app-dir", APPS, "--json", "--out", tmp_path / "o", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert [(f["kind"], f["operation"]) for f in report["findings"]] == [("event loop blocked", "GET /report")]
    (slow,) = [c for c in report["checked"] if c["operation"] == "GET /report"]
    assert slow["probe_max_ms"] >= 300 and slow["took_ms"] >= 390, slow
    assert result.returncode == 1
    # Where: the coroutine that held the loop, at its blocking line, sampled from a thread of the harness.
    line = _line_of(APPS / "shop_blocking.py", "time.sleep(0.4)")
    where = report["findings"][0]["location"]
    assert (where["file"], where["line"], where["function"]) == ("shop_blocking.py", line, "slow_report"), where


def test_a_write_that_waits_on_the_database_on_the_event_loop_is_found(tmp_path: Path) -> None:
    """The catalogue's async-blocking: its insert holds the loop only while it waits on the database, so the
    doctor times each write while another connection holds the write lock (0.8 s)."""
    result = _doctor("faults.async_blocking:app", "--json", "--out", tmp_path / "o", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert [(f["kind"], f["operation"]) for f in report["findings"]] == [("event loop blocked", "POST /todos")], report
    (create,) = [c for c in report["checked"] if c["operation"] == "POST /todos"]
    # It waited for the lock (held 0.8 s from just before the write: how much of it the write meets depends on
    # the machine), and the probe waited with it.
    assert create["took_ms"] >= 300 and create["probe_max_ms"] >= create["took_ms"] / 2, create
    assert result.returncode == 1
    # The async def route that called the blocking code is where the fix goes; the blocking line is beside it.
    where = report["findings"][0]["location"]
    assert (where["file"], where["function"]) == ("faults/async_blocking.py", "create_todo_on_the_loop"), where
    assert "at app/main.py:" in where["role"], where


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_doctor_finds_the_leaks_there_are_and_no_others(case: str, tmp_path: Path, doctor_runs: DoctorRuns) -> None:
    target, app_dir, leaking = CASES[case]
    result = doctor_runs.get(target, app_dir)
    report = result.report
    found = {o for f in report["findings"] if f["kind"] == "connection leak" for o in f["operations"]}
    assert not [f for f in report["findings"] if f["kind"] == "event loop blocked"], report["findings"]
    if leaking:
        assert leaking <= found and result.returncode == 1, (found, result.stderr)
        # The first operation opens a new connection for each one kept, and the operating system sees them too.
        (first,) = [f["evidence"] for f in report["findings"] if f["kind"] == "connection leak"][:1]
        assert "the operating system saw them too: file descriptors on the database files" in first, first
        # One leaked connection a request: the default pool (5 + 10 overflow) is empty after 15 in a row.
        (exhausted,) = [f["evidence"] for f in report["findings"] if f["kind"] == "pool exhausted"]
        assert exhausted.startswith("15 requests in a row emptied the pool: request 16 got"), exhausted
    else:  # no finding of any kind, and every check that applies ran: 48 reads at once included
        assert report["findings"] == [] and result.returncode == 0, (report["findings"], result.stderr)
        assert (report["verdict"], report["exit_code"], report["not_checked"]) == ("nothing found", 0, []), report
        assert any(c["operation"].endswith("48 at once") for c in report["checked"]), report["checked"]
    assert report["checked"] and all(c["statuses"] for c in report["checked"]), "every operation was exercised"
    assert result.out.is_dir() and not (result.cwd / "lab-reports").exists()
    (page,) = result.out.glob("doctor-*/report.html")
    html = page.read_text(encoding="utf-8")
    assert ("[FINDINGS]" if leaking else "[CLEAN]") in html
    for operation in leaking:
        assert re.search(rf"<code>{re.escape(operation)}</code><br><span class=\"mark fail\">\[FAIL\]</span>", html)
    if case == "missing-yield":
        # Later operations get the connections the first one's leak left in the pool: the OS sees none new.
        notes = {d["operation"]: d["evidence"] for d in report["disagreements"]}
        assert "handed out connections it already held open" in notes.get("GET /todos/count", ""), notes
        from tests.browser import render

        rendered = render(page.as_uri(), tmp_path / "chromium-profile")
        assert not rendered.console, rendered.console
        charted = sum(bool(c["checked_out"]) for c in report["checked"])
        assert 'id="findings"' in rendered.dom and rendered.dom.count('class="spark"') == charted


def test_the_html_report_escapes_what_the_app_says() -> None:
    from faultlab.doctor.checkup import Checked, Finding, Report
    from faultlab.doctor.html import render_doctor_html

    hostile = "<script>alert(1)</script>"
    report = Report("x:app", "sqlite", [Checked(f"GET /{hostile}", [500], [0, 1])], [Finding("leak", hostile, hostile)])
    html = render_doctor_html(report)
    assert "<script>" not in html and html.count("&lt;script&gt;") == 3


def test_an_app_that_cannot_be_imported_is_its_file_line_and_message(tmp_path: Path) -> None:
    result = run_lab("doctor", "broken:api", "--app-dir", APPS, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{APPS / 'broken.py'}:4: ImportError: cannot import name 'no_such_name'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_usage_error_names_no_frame_of_python_or_the_lab_and_is_json_with_json(tmp_path: Path) -> None:
    missing = _doctor("nosuch.mod:app", "--json", cwd=tmp_path)
    assert missing.returncode == 2 and json.loads(missing.stdout) == {
        "verdict": "usage error",
        "exit_code": 2,
        "error": "your app did not start: ModuleNotFoundError: No module named 'nosuch'",
    }, missing.stdout + missing.stderr
    no_app = _doctor("app.main:nope", cwd=tmp_path)
    assert no_app.returncode == 2 and "did not start: AttributeError: module 'app.main' has no attribute 'nope'" in (
        no_app.stderr
    ), no_app.stderr
    wrong_db = _doctor("app.main:app", "--compare-db", "mysql://u:PW@h/db", cwd=tmp_path)
    assert wrong_db.returncode == 2 and "give a SQLite or PostgreSQL URL" in wrong_db.stderr, wrong_db.stderr
    assert "PW" not in wrong_db.stderr and "serving" not in wrong_db.stdout, "refused before the checkup"


def test_a_target_that_is_not_module_colon_app_is_a_usage_error(tmp_path: Path) -> None:
    result = _doctor("shop.api", cwd=tmp_path)
    assert result.returncode == 2 and "name your app as MODULE:ATTRIBUTE" in result.stderr, result.stderr


def _on_postgresql(target: str, tmp_path: Path, app_dir: Path | None = None) -> tuple[dict[str, Any], int]:
    from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem

    if problem := postgres_problem(DEFAULT_POSTGRES_URL):
        pytest.skip(problem)
    options = [target, "--db", "postgresql", "--json", "--out", tmp_path / "out"]
    if app_dir is None:
        result = _doctor(*options, cwd=tmp_path)
    else:
        result = run_lab("doctor", *options, "--app-dir", app_dir, cwd=tmp_path)
    return json.loads(result.stdout), result.returncode


@pytest.mark.parametrize(("target", "idle"), [("faults.missing_yield:app", True), ("app.main:app", False)])
def test_on_postgresql_sessions_left_idle_in_transaction_are_found(target: str, idle: bool, tmp_path: Path) -> None:
    report, code = _on_postgresql(target, tmp_path)
    found = {f["operation"] for f in report["findings"] if f["kind"] == "idle in transaction"}
    if idle:
        assert {"GET /todos", "GET /todos/count"} <= found and code == 1, report["findings"]
        (reads,) = [c for c in report["checked"] if c["operation"] == "GET /todos"]
        assert reads["idle_in_transaction"] == [0, 1, 2, 3, 4], reads
        (leak,) = [f["evidence"] for f in report["findings"] if f["kind"] == "connection leak"][:1]
        assert "the operating system saw them too: TCP connections to PostgreSQL" in leak, leak
        # Where the idle transactions began: the reads' first statement, in the session nothing closes.
        idle_reads = [f for f in report["findings"] if f["kind"] == "idle in transaction"]
        (where,) = [f["location"] for f in idle_reads if f["operation"] == "GET /todos"]
        line = _line_of(PROJECT_ROOT / "app" / "main.py", "return list(db.scalars(todos_query(completed")
        assert (where["file"], where["line"], where["function"]) == ("app/main.py", line, "list_todos"), where
        assert "the session came from faults/missing_yield.py:" in where["role"], where
    else:
        assert report["findings"] == [] and code == 0, report["findings"]
        assert (report["verdict"], report["not_checked"]) == ("nothing found", []), report["not_checked"]
        # The user's server is never restarted (nor are sessions on it ended): that check needs a server of its own.
        restart = {"check": "database restart", "remedy": OWN_CLUSTER_REMEDY}
        assert [{k: e[k] for k in restart} for e in report["not_applicable"]] == [restart], report["not_applicable"]
        assert not [c for c in report["checked"] if "restart" in c["operation"]], report["checked"]
        # The correct app's connections run with its 30 s statement timeout (DB_STATEMENT_TIMEOUT_MS).
        assert "SHOW statement_timeout on a pooled connection: 30s" in [c["operation"] for c in report["checked"]]


def test_on_postgresql_a_transaction_kept_open_while_the_route_waits_is_found(tmp_path: Path) -> None:
    """The catalogue's idle-in-transaction: nothing is left after the request, but during its 2 s wait
    PostgreSQL shows the session idle in transaction (sampled while the request runs)."""
    report, code = _on_postgresql("faults.idle_in_transaction:app", tmp_path)
    found = [(f["kind"], f["operation"]) for f in report["findings"]]
    assert found == [("idle in transaction", "GET /todos/{todo_id}")], report["findings"]
    (read,) = [c for c in report["checked"] if c["operation"] == "GET /todos/{todo_id}"]
    assert read["idle_during_ms"] >= 1000 and code == 1, read
    # The connection checked out while the session sat idle was taken by the read's first statement.
    where = report["findings"][0]["location"]
    line = _line_of(PROJECT_ROOT / "app" / "main.py", "todo = db.get(Todo, todo_id)")
    assert (where["file"], where["line"], where["function"]) == ("app/main.py", line, "_get_or_404"), where


def _on_own_cluster(target: str, tmp_path: Path) -> tuple[dict[str, Any], int]:
    from faultlab.backends.cluster import cluster_problem

    if problem := cluster_problem():
        pytest.skip(problem)
    result = _doctor(target, "--db", "own-cluster", "--json", "--out", tmp_path / "out", cwd=tmp_path)
    assert result.stdout, result.stderr[-2000:]
    return json.loads(result.stdout), result.returncode


@pytest.mark.parametrize(("target", "pre_ping"), [("faults.no_pre_ping:app", False), ("app.main:app", True)])
def test_a_database_restart_on_a_server_of_the_doctors_own(target: str, pre_ping: bool, tmp_path: Path) -> None:
    """pg_ctl restart between two reads of GET /todos: without pool_pre_ping the first fails, the pool throws its
    connections away and the next succeeds; with it every one succeeds. The server is gone after the checkup."""
    report, code = _on_own_cluster(target, tmp_path)
    (restarted,) = [c for c in report["checked"] if c["operation"] == "GET /todos after a database restart"]
    found = [(f["kind"], f["operation"]) for f in report["findings"]]
    if pre_ping:
        assert (restarted["statuses"], found, code) == ([200, 200, 200], [], 0), (restarted, report["findings"])
        assert (report["verdict"], report["not_checked"], report["not_applicable"]) == ("nothing found", [], [])
    else:
        assert restarted["statuses"] == [500, 200, 200] and code == 1, restarted
        assert found == [("stale pooled connection", "GET /todos")], report["findings"]
        evidence = report["findings"][0]["evidence"]
        for said in ("pg_ctl restart", "terminating connection", "recovered: request 2 of 3", "pool_pre_ping=True"):
            assert said in evidence, evidence
        # The create_engine call, and the fault's line that asked its helper for an engine without pre-ping.
        where = report["findings"][0]["location"]
        line = _line_of(PROJECT_ROOT / "app" / "database.py", "return create_engine(")
        assert (where["file"], where["line"], where["function"]) == ("app/database.py", line, "make_engine"), where
        called = _line_of(PROJECT_ROOT / "faults" / "no_pre_ping.py", "make_engine(pool_pre_ping=False)")
        assert f"called from faults/no_pre_ping.py:{called} in <module>" in where["role"], where
    assert report["engine_url"].startswith("postgresql+psycopg://faultlab_doctor_"), report["engine_url"]
    port = int(report["engine_url"].rsplit(":", 1)[1].split("/")[0])
    assert port != 5432 and not _answers(port), f"the doctor's server on port {port} outlived the checkup"


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_on_postgresql_an_engine_without_a_statement_timeout_is_found_where_it_is_made(tmp_path: Path) -> None:
    report, code = _on_postgresql("shop:api", tmp_path, APPS)
    assert [(f["kind"], f["operation"]) for f in report["findings"]] == [("no statement timeout", "(the engine)")]
    (finding,) = report["findings"]
    line = _line_of(APPS / "shop.py", "create_engine(")
    assert (finding["location"]["file"], finding["location"]["line"]) == ("shop.py", line), finding["location"]
    assert "connect_args" in finding["location"]["role"], finding["location"]
    for said in ("statement_timeout = 0", 'connect_args={"options": "-c statement_timeout=30000"}'):
        assert said in finding["evidence"], finding["evidence"]
    assert "SHOW statement_timeout on a pooled connection: 0" in [c["operation"] for c in report["checked"]]
    assert code == 1


def test_schema_drift_against_a_database_of_yours_read_only(tmp_path: Path) -> None:
    import hashlib

    from sqlalchemy import create_engine

    from app.migrate import upgrade

    databases = {}
    for revision in ("0001", "head"):
        path = tmp_path / f"yours-{revision}.db"
        engine = create_engine(f"sqlite:///{path}")
        upgrade(engine, revision)
        engine.dispose()
        databases[revision] = path
    before = hashlib.sha256(databases["0001"].read_bytes()).hexdigest()

    def drift(path: Path) -> list[str]:
        result = _doctor("app.main:app", "--compare-db", f"sqlite:///{path}", "--json", cwd=tmp_path)
        return [f["evidence"] for f in json.loads(result.stdout)["findings"] if f["kind"] == "schema drift"]

    old = drift(databases["0001"])
    assert "column todos.priority: in the models, not in the database" in old, old
    assert "table tags: in the models, not in the database" in old, old
    assert drift(databases["head"]) == []
    assert hashlib.sha256(databases["0001"].read_bytes()).hexdigest() == before, "the doctor altered the database"


@pytest.mark.parametrize(
    ("target", "kind", "operation", "evidence"),
    [
        ("faults.detached_instance:app", "server error", "POST /todos", "DetachedInstanceError"),
        ("faults.no_commit:app", "created, then not found", "GET /todos/{todo_id}", "answered 404 every time"),
    ],
    ids=["detached-instance", "no-commit"],
)
def test_a_symptom_at_an_endpoint_is_found_on_its_operation(
    target: str, kind: str, operation: str, evidence: str, doctor_runs: DoctorRuns
) -> None:
    result = doctor_runs.get(target, PROJECT_ROOT)  # shared with tests/test_doctor_lines.py
    report = result.report
    found = [(f["operation"], f["evidence"]) for f in report["findings"] if f["kind"] == kind]
    assert [where for where, _ in found] == [operation] and evidence in found[0][1], report["findings"]
    assert result.returncode == 1


def test_schema_drift_against_a_postgresql_database_of_yours(tmp_path: Path) -> None:
    """The same comparison on PostgreSQL (psycopg loads ctypes, whose ``cdll`` must not be asked for metadata)."""
    import secrets

    import psycopg
    from sqlalchemy import create_engine, make_url

    from app.migrate import upgrade
    from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem

    if problem := postgres_problem(DEFAULT_POSTGRES_URL):
        pytest.skip(f"no PostgreSQL server: {problem}")
    name = f"drift_test_{secrets.token_hex(4)}"
    with psycopg.connect(DEFAULT_POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(DEFAULT_POSTGRES_URL).set(database=name)
    try:
        engine = create_engine(url.set(drivername="postgresql+psycopg"))
        upgrade(engine, "0001")
        engine.dispose()
        compare = url.render_as_string(hide_password=False)
        result = _doctor("app.main:app", "--compare-db", compare, "--json", cwd=tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        drift = [f["evidence"] for f in json.loads(result.stdout)["findings"] if f["kind"] == "schema drift"]
        assert "table tags: in the models, not in the database" in drift, drift
    finally:
        with psycopg.connect(DEFAULT_POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_route_that_always_fails_is_a_server_error_and_says_nothing_of_the_pool(doctor_runs: DoctorRuns) -> None:
    """Its failures at once are its failures one at a time: the pool checks use reads that answer 2xx."""
    result = doctor_runs.get("shop_failing:api", APPS)
    report = result.report
    assert [(f["kind"], f["operation"]) for f in report["findings"]] == [("server error", "GET /broken")], report
    assert any(c["operation"] == "GET /items, 48 at once" for c in report["checked"]), report["checked"]
    assert result.returncode == 1


def test_an_interrupted_checkup_reports_what_it_found_until_then(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.lab_cli import RUN_LAB

    doctor = subprocess.Popen(
        [sys.executable, str(RUN_LAB), "doctor", "faults.missing_yield:app", "--app-dir", str(PROJECT_ROOT), "--out",
         str(tmp_path / "o")],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert doctor.stdout is not None
    for line in doctor.stdout:  # the first operation found leaking, then Ctrl+C
        if "connection leak" in line:
            doctor.send_signal(signal.SIGINT)
            break
    stdout, stderr = doctor.communicate(timeout=60)
    assert doctor.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "what was found so far is reported" in stderr, stderr
    (report,) = (tmp_path / "o").glob("doctor-*/report.md")
    text = report.read_text(encoding="utf-8")
    assert "Interrupted: " in text and "connection leak" in text, text
