"""Every experiment in the catalogue, on real servers: the fault reproduces and the fix holds.

Each test asserts the verdict and then the observations that make the lesson true, so a library upgrade
that changes what really happens fails here with the evidence in the message.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from lab.backends import DEFAULT_POSTGRES_URL, BackendName, postgres_problem
from lab.catalogue import load_catalogue
from lab.orchestrate import run_experiment
from lab.results import ExperimentResult, StepResult, Verdict
from lab.spec import RunName

CATALOGUE = load_catalogue()
POSTGRES_URL = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)
CASES = [
    pytest.param(entry.experiment.name, backend, id=f"{entry.experiment.name}-{backend}")
    for entry in CATALOGUE
    for backend in entry.experiment.backends
]


@functools.cache
def _postgres_problem() -> str | None:
    return postgres_problem(POSTGRES_URL)


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


Cache = dict[tuple[str, BackendName], ExperimentResult]


@pytest.fixture(scope="module")
def results() -> Cache:
    """Each experiment runs once per backend; the tests below share its result."""
    return {}


def _run(name: str, out: Path, cache: Cache, backend: BackendName = "sqlite") -> ExperimentResult:
    if backend == "postgresql" and (problem := _postgres_problem()):
        pytest.skip(f"{problem}; set FAULTLAB_POSTGRES_URL to a server where the lab may create databases")
    if (name, backend) not in cache:
        cache[name, backend] = run_experiment(CATALOGUE.get(name), out, backend=backend, postgres_url=POSTGRES_URL)
    return cache[name, backend]


@pytest.mark.parametrize(("name", "backend"), CASES)
def test_experiment_behaves_as_expected(name: str, backend: BackendName, tmp_path: Path, results: Cache) -> None:
    result = _run(name, tmp_path, results, backend)
    assert result.verdict is Verdict.AS_EXPECTED, "\n".join(_failed_checks(result))
    report = Path(result.report_dir or "")
    assert (report / "report.md").is_file() and (report / "fault-server.log").is_file()
    journal = json.loads((report / "journal.json").read_text())
    assert journal["verdict"] == "as expected"
    assert set(journal["runs"]) == {"fault", "fix"}
    assert all(journal["runs"][run]["steps"] for run in ("fault", "fix"))


def test_missing_yield_leaks_until_the_collector_runs(tmp_path: Path, results: Cache) -> None:
    result = _run("missing-yield", tmp_path, results)
    reads = _step(result, "fault", "Fifteen reads, one at a time").observation
    series = reads.pool_checked_out_series or []
    assert max(series) >= 4 and series[0] >= 1, f"checked-out count did not climb: {series}"
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


def test_deleted_db_reads_old_rows_fails_writes_and_loses_data(tmp_path: Path, results: Cache) -> None:
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


def test_stale_schema_fails_until_migrated_and_keeps_old_rows(tmp_path: Path, results: Cache) -> None:
    result = _run("stale-schema", tmp_path, results)
    listing = _step(result, "fault", "List the todos").observation
    assert listing.status == 500 and "no such column: todos.priority" in (listing.error or ""), listing
    create = _step(result, "fault", "Create a todo with a priority").observation
    assert create.status == 500 and "has no column named priority" in (create.error or ""), create

    fixed = _step(result, "fix", "List the todos").observation
    assert fixed.status == 200 and fixed.rows == 2, fixed
    assert '"priority":0' in (_step(result, "fix", "Read one old todo").observation.body or "")


def test_missing_yield_on_postgresql_three_witnesses_agree(tmp_path: Path, results: Cache) -> None:
    """The pool, the operating system and PostgreSQL itself all count the same fifteen leaked sessions."""
    result = _run("missing-yield", tmp_path, results, "postgresql")
    burst = _step(result, "fault", "A burst: 35 reads, 20 at a time").observation
    assert (burst.pool_checked_out, burst.pg_tcp, burst.pg_idle_in_transaction) == (15, 15, 15), burst
    fixed = _step(result, "fix", "A burst: 35 reads, 20 at a time").observation
    assert fixed.pg_idle_in_transaction == 0 and fixed.server_errors == 0, fixed
    assert burst.db_fds is None, "a PostgreSQL run has no database file to watch"


def test_postgresql_databases_are_dropped_after_the_run(tmp_path: Path, results: Cache) -> None:
    import psycopg

    _run("missing-yield", tmp_path, results, "postgresql")
    with psycopg.connect(POSTGRES_URL) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'faultlab_%'").fetchall()
    assert not left
