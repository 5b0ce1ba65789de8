"""The doctor says "nothing found" only when it looked: the operating system's count finds a leak in an app
without any SQLAlchemy engine (plain sqlite3), and a checkup where a check could not run is incomplete (exit
3), in the terminal, report.md, report.html and --json, with what the user can do."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.doctor_runs import DoctorRuns
from tests.lab_cli import run_lab

APPS = Path(__file__).parent / "fixtures" / "doctor_apps"
NOTES = {"GET /notes", "POST /notes", "GET /notes/{note_id}"}


def _doctor(target: str, tmp_path: Path) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    result = run_lab("doctor", target, "--app-dir", APPS, "--json", "--out", tmp_path / "o", cwd=tmp_path)
    return json.loads(result.stdout), result


def test_a_connection_never_closed_without_an_engine_is_seen_by_the_os(doctor_runs: DoctorRuns) -> None:
    result = doctor_runs.get("notes_leaky:api", APPS)  # shared with tests/test_doctor_lines.py
    report = result.report
    seen = "connection leak (seen by the OS)"
    leaks = {f["operation"]: f["evidence"] for f in report["findings"] if f["kind"] == seen}
    assert set(leaks) == NOTES, report["findings"]
    # One more descriptor on the database file a request; the list keeps them, so the collector closes none.
    first = leaks["GET /notes"]
    assert first.startswith("file descriptors on the database files 0→1→2→3→4 over 4 requests"), first
    assert "still 5" in first and "nothing closes them" in first, first
    assert result.returncode == 1 and (report["verdict"], report["exit_code"]) == ("findings", 1), result.stderr
    # Findings win over incomplete, and the checks that did not run are still listed.
    assert "connection leaks seen by the pool" in {e["check"] for e in report["not_checked"]}, report["not_checked"]
    assert "did not run: connection leaks seen by the pool" in result.stderr, result.stderr


def test_a_clean_app_without_an_engine_is_incomplete_never_nothing_found(tmp_path: Path) -> None:
    report, result = _doctor("notes:api", tmp_path)
    assert result.returncode == 3 and (report["verdict"], report["exit_code"]) == ("incomplete", 3), result.stderr
    assert report["findings"] == [], report["findings"]
    # The OS looked, and saw each request's connection closed.
    assert {c["operation"]: c["os_open"] for c in report["checked"] if c["operation"] in NOTES} == {
        operation: [0, 0, 0, 0, 0] for operation in NOTES
    }, report["checked"]
    not_run = {entry["check"]: entry for entry in report["not_checked"]}
    assert set(not_run) == {"connection leaks seen by the pool", "statements grow with rows (N+1)", "pool budget"}
    # Without SQLAlchemy the harness sees no SQL, so no read is known to touch the database: no budget on a guess.
    assert "ran a SQL statement" in not_run["pool budget"]["reason"], not_run
    assert "no SQLAlchemy engine" in not_run["connection leaks seen by the pool"]["reason"], not_run
    assert "--engine MODULE:ENGINE" in not_run["connection leaks seen by the pool"]["remedy"], not_run
    # PostgreSQL's checks do not apply to a SQLite run: listed with how to include them, never a gap.
    assert {e["check"]: e["remedy"] for e in report["not_applicable"]} == {
        "statement timeout": "run with --db postgresql to include it",
        "idle in transaction": "run with --db postgresql to include it",
        "database restart": "run with --db own-cluster to include it: a PostgreSQL server of the doctor's own",
    }, report["not_applicable"]
    terminal = result.stderr  # with --json the terminal's lines go to stderr
    assert "verdict: incomplete: nothing found, but 3 check(s) did not run (exit 3)" in terminal, terminal
    assert "what you can do: name it with --engine MODULE:ENGINE" in terminal, terminal
    (folder,) = (tmp_path / "o").glob("doctor-*")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert markdown.count("**Incomplete: nothing found, but 3 check(s) did not run.**") == 1, markdown
    assert "- **connection leaks seen by the pool**: no SQLAlchemy engine" in markdown, markdown
    assert "What you can do: name it with --engine MODULE:ENGINE" in markdown, markdown
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "[INCOMPLETE]" in html and 'data-exit-code="3"' in html and "[CLEAN]" not in html
    assert html.count("[NOT RUN]") == 3 and "--engine MODULE:ENGINE" in html


@pytest.mark.parametrize(
    ("findings", "not_run", "interrupted", "verdict"),
    [
        (0, 0, False, ("nothing found", 0)),
        (2, 1, False, ("findings", 1)),
        (0, 1, False, ("incomplete", 3)),
        (2, 1, True, ("interrupted", 130)),
    ],
)
def test_findings_win_over_checks_that_did_not_run(
    findings: int, not_run: int, interrupted: bool, verdict: tuple[str, int]
) -> None:
    from faultlab.doctor.verdict import judge

    assert judge(findings=findings, not_run=not_run, interrupted=interrupted) == verdict


def test_a_check_that_does_not_apply_leaves_nothing_found_and_json_says_so() -> None:
    from faultlab.doctor.checkup import Finding, NotRun, Report

    not_applicable = [NotRun("statement timeout", "PostgreSQL only", "run with --db postgresql to include it")]
    clean = Report("x:app", "sqlite", not_applicable=not_applicable).as_json()
    assert (clean["verdict"], clean["exit_code"], clean["not_checked"]) == ("nothing found", 0, [])
    gap = NotRun("connection leaks seen by the pool", "no SQLAlchemy engine", "name it with --engine MODULE:ENGINE")
    found = Report("x:app", "sqlite", findings=[Finding("server error", "GET /x", "500")], not_checked=[gap])
    assert found.as_json()["verdict"] == "findings" and found.as_json()["not_checked"] == [
        {"check": gap.check, "reason": gap.reason, "remedy": gap.remedy}
    ]


def test_where_the_pool_and_the_os_disagree_the_report_says_so() -> None:
    """Both directions, on the series a checkup records: connections opened outside the engine (the OS sees
    them climb, the pool gives every one back), and a pool that hands out connections it already holds."""
    from types import SimpleNamespace

    from faultlab.doctor.checks.os_leak import OsLeak
    from faultlab.doctor.contract import Exercised
    from faultlab.doctor.openapi import Operation
    from faultlab.doctor.report import Checked, Finding, Location, Report

    report = Report("x:app", "sqlite")
    ctx: Any = SimpleNamespace(live=SimpleNamespace(os=SimpleNamespace(what="file descriptors on the database files")))
    ctx.report = report

    def _seen_by_os(checked: Checked, found: list[Finding]) -> list[Finding]:
        method, _, path = checked.operation.partition(" ")
        return OsLeak().operation(ctx, Exercised(Operation(method, path), checked), found)

    outside = Checked("GET /x", [200] * 4, [0, 0, 0, 0, 0], os_open=[1, 2, 3, 4, 5], os_after_collection=5)
    (found,) = _seen_by_os(outside, [])
    assert found.kind == "connection leak (seen by the OS)", found
    assert "file descriptors on the database files 1→2→3→4→5 over 4 requests" in found.evidence, found
    (note,) = report.disagreements
    assert "opened outside the engine the doctor watches" in note.evidence, note
    # No checkout was recorded for them: no line, and why (the pool's checkouts are where lines come from).
    assert found.unlocated.startswith("no checkout was recorded for these connections") and found.where, found
    assert note.location is None and note.unlocated == found.unlocated, note

    pooled = Checked("GET /y", [200] * 4, [0, 1, 2, 3, 4], os_open=[5, 5, 5, 5, 5], os_after_collection=5)
    at = Location("shop.py", 12, "get_session", role="returns the route's session")
    leak = Finding("connection leak", "GET /y", "checked out 0→1→2→3→4", location=at)
    assert _seen_by_os(pooled, [leak]) == [] and leak.evidence == "checked out 0→1→2→3→4"
    assert "handed out connections it already held open" in report.disagreements[1].evidence, report.disagreements
    assert report.disagreements[1].location == at, report.disagreements  # the same connections: the pool's line

    both = Checked("GET /z", [200] * 4, [0, 1, 2, 3, 4], os_open=[1, 1, 2, 3, 4], os_after_collection=5)
    leak = Finding("connection leak", "GET /z", "checked out 0→1→2→3→4")
    assert _seen_by_os(both, [leak]) == [] and len(report.disagreements) == 2
    assert leak.evidence.endswith("the operating system saw them too: file descriptors on the database files 1→1→2→3→4")
