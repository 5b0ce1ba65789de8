"""Every experiment in the catalogue, on real servers: the fault reproduces and the fix holds.

Each test asserts the verdict and then the observations that make the lesson true, so a library upgrade
that changes what really happens fails here with the evidence in the message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.catalogue import load_catalogue
from lab.orchestrate import run_experiment
from lab.results import ExperimentResult, StepResult, Verdict
from lab.spec import RunName

CATALOGUE = load_catalogue()


def _step(result: ExperimentResult, run: RunName, title: str) -> StepResult:
    return next(step for step in result.runs[run].steps if step.title == title)


def _failed_checks(result: ExperimentResult) -> list[str]:
    return [
        f"{run} step {step.number} ({step.title}): {check.observation} {check.expected}, saw {check.observed!r}"
        for run, r in result.runs.items()
        for step in r.steps
        for check in step.checks
        if not check.passed
    ] + [f"{run}: {r.error}" for run, r in result.runs.items() if r.error]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExperimentResult]:
    return {}


def _run(name: str, out: Path, cache: dict[str, ExperimentResult]) -> ExperimentResult:
    if name not in cache:
        cache[name] = run_experiment(CATALOGUE.get(name), out)
    return cache[name]


@pytest.mark.parametrize("name", CATALOGUE.names())
def test_experiment_behaves_as_expected(name: str, tmp_path: Path, results: dict[str, ExperimentResult]) -> None:
    result = _run(name, tmp_path, results)
    assert result.verdict is Verdict.AS_EXPECTED, "\n".join(_failed_checks(result))
    report = Path(result.report_dir or "")
    assert (report / "report.md").is_file() and (report / "fault-server.log").is_file()
    journal = json.loads((report / "journal.json").read_text())
    assert journal["verdict"] == "as expected"
    assert set(journal["runs"]) == {"fault", "fix"}
    assert all(journal["runs"][run]["steps"] for run in ("fault", "fix"))


def test_missing_yield_leaks_until_the_collector_runs(tmp_path: Path, results: dict[str, ExperimentResult]) -> None:
    result = _run("missing-yield", tmp_path, results)
    reads = _step(result, "fault", "Fifteen reads, one at a time").observation
    series = reads.pool_checked_out_series or []
    assert max(series) >= 5 and series[0] >= 1, f"checked-out count did not climb: {series}"
    assert _step(result, "fault", "Run the garbage collector in the server").observation.pool_checked_out == 0

    burst = _step(result, "fault", "A burst: 35 reads, 20 at a time").observation
    assert burst.server_errors and "QueuePool limit of size 5 overflow 10 reached" in (burst.error or ""), burst
    assert burst.pool_checked_out == 15 and (burst.db_fds or 0) >= 15, burst

    fixed = _step(result, "fix", "Fifteen reads, one at a time").observation
    assert set(fixed.pool_checked_out_series or [None]) == {0}, fixed
    fixed_burst = _step(result, "fix", "A burst: 35 reads, 20 at a time").observation
    assert (fixed_burst.ok, fixed_burst.server_errors, fixed_burst.error) == (35, 0, None), fixed_burst

    report = (Path(result.report_dir or "") / "report.md").read_text()
    assert "pool out 1→2" in report and "pool out 0→0→0" in report


def test_deleted_db_reads_old_rows_fails_writes_and_loses_data(
    tmp_path: Path, results: dict[str, ExperimentResult]
) -> None:
    result = _run("deleted-db", tmp_path, results)
    deleted = _step(result, "fault", "Delete todos.db under the running server").observation
    assert deleted.db_exists is False and (deleted.db_fds_deleted or 0) >= 1, deleted
    write = _step(result, "fault", "Write one more").observation
    assert write.status == 500 and "attempt to write a readonly database" in (write.error or ""), write
    read = _step(result, "fault", "Read the list").observation
    assert (read.status, read.rows) == (200, 3), read
    burst = _step(result, "fault", "A burst: 40 reads at once").observation
    assert "no such table: todos" in (burst.error or "") and burst.db_size == 0, burst
    after_restart = _step(result, "fault", "Read the list after the restart").observation
    assert (after_restart.status, after_restart.rows) == (200, 0), after_restart

    fixed_read = _step(result, "fix", "Read the list").observation
    assert (fixed_read.status, fixed_read.rows) == (200, 1), "the fix run should show the three old rows lost"
    report = (Path(result.report_dir or "") / "report.md").read_text()
    assert "gone for good" in report


def test_stale_schema_fails_until_migrated_and_keeps_old_rows(
    tmp_path: Path, results: dict[str, ExperimentResult]
) -> None:
    result = _run("stale-schema", tmp_path, results)
    listing = _step(result, "fault", "List the todos").observation
    assert listing.status == 500 and "no such column: todos.priority" in (listing.error or ""), listing
    create = _step(result, "fault", "Create a todo with a priority").observation
    assert create.status == 500 and "has no column named priority" in (create.error or ""), create

    fixed = _step(result, "fix", "List the todos").observation
    assert fixed.status == 200 and fixed.rows == 2, fixed
    assert '"priority":0' in (_step(result, "fix", "Read one old todo").observation.body or "")
