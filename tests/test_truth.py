"""Each way the engine could once report what did not happen: a hollow run, a matcher that can never
pass, a witness that cannot observe here, a cause lost, an error blamed on the wrong step."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import pytest

from faultlab.errors import ExperimentFileError
from faultlab.model.catalogue import load_catalogue, load_file
from faultlab.model.judge import judge
from faultlab.model.results import Verdict
from faultlab.model.spec import Match
from faultlab.plugins.observations import Observation
from faultlab.plugins.registry import Registry
from faultlab.running.orchestrate import run_experiment
from faultlab.server import procfs
from tests.catalogue_runs import Cache

FIXTURES = Path(__file__).parent / "fixtures"
EXPLAIN = '[explain]\nwhy = "w"\nfix = "f"\nremember = "r"\n'


def _experiment(tmp_path: Path, steps: str, *, backends: str = '["sqlite"]', fault: str = "missing_yield") -> Path:
    path = tmp_path / "probe-me.toml"
    head = (
        f'name = "probe-me"\ntitle = "t"\nbackends = {backends}\n[fault]\nvariant = "{fault}"\n[fix]\nvariant = "app"\n'
    )
    path.write_text(head + textwrap.dedent(steps) + EXPLAIN)
    return path


REQUEST = '[[steps]]\nkind = "request"\npath = "/todos"\n'
ACTION = '[[steps]]\nkind = "action"\naction = "gc_collect"\n'
REJECTED = {
    "fix expects nothing": (
        REQUEST + "expect.fault = { status = 200 }\nexpect.fix = {}\n",
        "no step has an expect.fix that applies on sqlite",
    ),
    "fix expects only PostgreSQL facts": (
        REQUEST + "expect.fault = { status = 200 }\nexpect.fix = { pg_connections = 0 }\n",
        "no step has an expect.fix that applies on sqlite",
    ),
    "a status as text": (
        REQUEST + 'expect.fault = { status = "500" }\nexpect.fix = { ok = 1 }\n',
        "status is a count: expected a whole number, not '500'",
    ),
    "a flag as a number": (
        REQUEST + "expect.fault = { db_exists = 1 }\nexpect.fix = { ok = 1 }\n",
        "db_exists is a flag: expected true or false, not 1",
    ),
    "a status on an action": (
        ACTION + "expect.fault = { status = 200 }\n" + REQUEST + "expect.fault = { ok = 1 }\nexpect.fix = { ok = 1 }\n",
        "only request steps observe status, not an action step",
    ),
    "not_contains on a count": (
        REQUEST + 'expect.fault = { pool_checked_out = { not_contains = "x" } }\nexpect.fix = { ok = 1 }\n',
        "pool_checked_out is a count: use equals, max, min, not not_contains",
    ),
    "a series matched directly": (
        REQUEST
        + "sample_each = true\nexpect.fault = { pool_checked_out_series = { min = 1 } }\nexpect.fix = { ok = 1 }\n",
        "pool_checked_out_series is a series and is not matched directly",
    ),
    "a count at least 0": (
        REQUEST + "expect.fault = { ok = { min = 0 } }\nexpect.fix = { ok = 1 }\n",
        "steps[1]: expect.fault.ok: every value passes, so it can never fail",
    ),
    "text that contains nothing": (
        REQUEST + 'expect.fault = { ok = 1 }\nexpect.fix = { body = { contains = "" } }\n',
        'steps[1]: expect.fix.body: contains "" holds for every text',
    ),
    "text that must not contain nothing": (
        REQUEST + 'expect.fault = { body = { not_contains = "" } }\nexpect.fix = { ok = 1 }\n',
        'steps[1]: expect.fault.body: not_contains "" fails for every text',
    ),
    "an empty range": (
        REQUEST + "expect.fault = { pool_checked_out = { min = 5, max = 1 } }\nexpect.fix = { ok = 1 }\n",
        "expect.fault.pool_checked_out: no value can pass: the range [5, 1] is empty",
    ),
    "a status of at least 100": (
        REQUEST + "expect.fault = { status = { min = 100 } }\nexpect.fix = { ok = 1 }\n",
        "expect.fault.status: every value passes, so it can never fail (HTTP statuses are whole numbers from 100 to",
    ),
    "a status that does not exist": (
        REQUEST + "expect.fault = { status = 700 }\nexpect.fix = { ok = 1 }\n",
        "expect.fault.status: no value can pass: 700 is outside [100, 599]",
    ),
    "equals outside its own range": (
        REQUEST + "expect.fault = { ok = { equals = 3, min = 5 } }\nexpect.fix = { ok = 1 }\n",
        "expect.fault.ok: no value can pass: 3 is outside [5, ∞]",
    ),
    "a latency of at least 0": (
        REQUEST + "expect.fault = { ok = 1 }\nexpect.fix = { latency_max_ms = { min = 0.0 } }\n",
        "expect.fix.latency_max_ms: every value passes, so it can never fail",
    ),
    "text that must contain what it must not": (
        REQUEST + 'expect.fault = { body = { contains = "todos", not_contains = "do" } }\nexpect.fix = { ok = 1 }\n',
        "no value can pass: a text that contains 'todos' also contains 'do'",
    ),
    "a peak without samples": (
        REQUEST + "expect.fault = { pool_checked_out_peak = { min = 4 } }\nexpect.fix = { ok = 1 }\n",
        "only request steps with sample_each = true observe pool_checked_out_peak",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_an_expectation_that_can_never_be_judged_is_rejected_at_load(
    registry: Registry, case: str, tmp_path: Path
) -> None:
    steps, message = REJECTED[case]
    with pytest.raises(ExperimentFileError) as caught:
        load_file(registry, _experiment(tmp_path, steps))
    assert message in str(caught.value), str(caught.value)


def test_an_action_is_refused_on_a_backend_it_does_not_exist_on(registry: Registry, tmp_path: Path) -> None:
    steps = (
        '[[steps]]\nkind = "action"\naction = "terminate_backends"\n'
        + REQUEST
        + "expect.fault = { ok = 1 }\nexpect.fix = { ok = 1 }\n"
    )
    with pytest.raises(ExperimentFileError, match="terminate_backends cannot run on sqlite; list only postgresql"):
        load_file(registry, _experiment(tmp_path, steps, backends='["sqlite", "postgresql"]'))


def test_a_missing_value_passes_no_matcher_not_even_not_contains(registry: Registry) -> None:
    observation = Observation(values={"error": None, "body": "fine"})
    (check,) = judge(registry, {"error": Match(not_contains="Timeout")}, observation, backend="sqlite")
    assert check.outcome == "fail"
    (check,) = judge(registry, {"body": Match(not_contains="Timeout")}, observation, backend="sqlite")
    assert check.outcome == "pass"


def test_without_proc_file_descriptors_are_na_and_a_run_with_nothing_else_is_not_judged(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a Mac: no /proc. The fds checks are n/a, not failures; a run left with none is 'not judged'."""
    monkeypatch.setattr(procfs, "PROC_ROOT", tmp_path / "no-proc")
    steps = (
        REQUEST
        + "repeat = 3\nsample_each = true\n"
        + "expect.fault = { ok = 3, db_fds = { min = 1 } }\nexpect.fix = { db_fds = { min = 1 } }\n"
    )
    path = _experiment(tmp_path, steps)
    result = run_experiment(registry, load_catalogue(registry, [path.parent]).get("probe-me"), tmp_path / "out")
    fault_checks = {c.observation: c for c in result.runs["fault"].checks}
    assert fault_checks["ok"].outcome == "pass"
    assert fault_checks["db_fds"].outcome == "n/a" and "no-proc" in (fault_checks["db_fds"].reason or "")
    assert result.runs["fault"].held and not result.runs["fix"].judged
    assert result.verdict is Verdict.NOT_JUDGED and result.verdict.exit_code == 1
    reads = result.runs["fault"].steps[0].observation
    assert "db_fds_series" in reads.unavailable and "db_fds_series" not in reads.values, "no placeholder values"
    assert "not judged" in (Path(result.report_dir or "") / "report.md").read_text()


def test_the_terminal_says_why_a_run_is_not_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faultlab.cli import main

    monkeypatch.setattr(procfs, "PROC_ROOT", tmp_path / "no-proc")
    monkeypatch.setenv("COLUMNS", "200")
    steps = REQUEST + "expect.fault = { ok = 1 }\nexpect.fix = { db_fds = { min = 1 } }\n"
    path = _experiment(tmp_path, steps)
    assert main(["--experiments", str(path.parent), "--out", str(tmp_path / "out"), "probe-me"]) == 1
    out = capsys.readouterr().out
    assert "verdict: not judged" in out and "the fix run could not be judged here" in out, out
    assert "db_fds ≥ 1: n/a (no " in out, out


def test_deleted_db_without_proc_still_reproduces_with_its_fd_checks_na(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procfs, "PROC_ROOT", tmp_path / "no-proc")
    result = run_experiment(registry, load_catalogue(registry).get("deleted-db"), tmp_path)
    assert result.verdict is Verdict.AS_EXPECTED
    na = {c.observation for run in result.runs.values() for c in run.checks if c.outcome == "n/a"}
    assert na == {"db_fds_deleted"}, na


def test_relative_db_path_without_proc_still_reproduces_with_which_file_is_open_na(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file count needs no /proc; which file the server holds does: n/a, not a guessed "open ?"."""
    monkeypatch.setattr(procfs, "PROC_ROOT", tmp_path / "no-proc")
    result = run_experiment(registry, load_catalogue(registry).get("relative-db-path"), tmp_path)
    assert result.verdict is Verdict.AS_EXPECTED
    checks = [c for run in result.runs.values() for c in run.checks]
    assert {c.observation for c in checks if c.outcome == "n/a"} == {"db_files"}
    assert any(c.observation == "db_files_count" and c.outcome == "pass" and c.observed == 2 for c in checks)


def test_the_cause_behind_a_response_validation_error_is_kept(results: Cache) -> None:
    result = results.get("detached-instance")
    assert result.verdict is Verdict.AS_EXPECTED
    (record,) = result.runs["fault"].steps[0].observation.exceptions
    assert record.chain[0].type.endswith("ResponseValidationError")
    assert "DetachedInstanceError" in str(record) and "is not bound to a Session" in str(record), record
    assert (record.step, record.method, record.path) == ("fault:1", "POST", "/todos")


def test_the_fix_servers_log_ends_with_its_shutdown(results: Cache) -> None:
    result = results.get("stale-schema")
    for run in ("fault", "fix"):
        last = (Path(result.report_dir or "") / f"{run}-server.log").read_text().splitlines()[-1]
        assert "Finished server process" in last, f"{run}-server.log ends with: {last}"


def test_main_puts_back_the_sigterm_handler_it_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results: Cache
) -> None:
    """main() ends a run on SIGTERM as on Ctrl+C, and gives back the handler it found. What the run does on
    its servers is not what this is about: main() gets the session's run of stale-schema."""
    from faultlab.cli import main
    from faultlab.interrupts import raise_interrupt
    from faultlab.running import orchestrate

    run = results.get("stale-schema")
    during = []

    def the_sessions_run(registry: object, entry: object, out_dir: Path, **options: object) -> object:
        during.append(signal.getsignal(signal.SIGTERM))
        return run

    def mine(signum: int, frame: object) -> None:
        pass

    monkeypatch.setattr(orchestrate, "run_experiment", the_sessions_run)
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["stale-schema", "--out", str(tmp_path)]) == 0
        assert during == [raise_interrupt], during
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_exception_from_an_earlier_step_is_shown_late_not_lost_nor_counted_here(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from faultlab.running.errorlog import ErrorLog
    from faultlab.witnesses.server_errors import ServerErrors

    errors = tmp_path / "errors"
    errors.mkdir()
    link = {"type": "sqlalchemy.exc.TimeoutError", "message": "QueuePool limit reached"}
    (errors / "1.jsonl").write_text(
        "".join(json.dumps({"step": step, "chain": [link]}) + "\n" for step in ("fault:2", "fault:3"))
        + '{"step": "fault:3", "cha\n'  # a line the harness could not finish
    )
    ctx = SimpleNamespace(run="fault", step=3, exceptions=ErrorLog(errors).read_new())
    values = ServerErrors().observe(ctx)  # type: ignore[arg-type]
    # The unfinished line names no step: it is shown where it was read, never dropped.
    assert values["exceptions"] == 2, values
    first, second = values["error"].splitlines()
    assert first == "TimeoutError: QueuePool limit reached" and second.startswith("unreadable record: 1.jsonl:")
    assert values["late_errors"] == "step 2: TimeoutError: QueuePool limit reached"


def test_each_problem_of_a_step_is_a_line_of_its_own_naming_the_step_and_the_run(
    registry: Registry, tmp_path: Path
) -> None:
    steps = REQUEST + 'expect.fault = { ok = { min = 0 } }\nexpect.fix = { ok = 1, body = { contains = "" } }\n'
    with pytest.raises(ExperimentFileError) as caught:
        load_file(registry, _experiment(tmp_path, steps))
    assert caught.value.problems == [
        "steps[1]: expect.fault.ok: every value passes, so it can never fail (counts are whole numbers ≥ 0); give a "
        "bound that some counts miss",
        'steps[1]: expect.fix.body: contains "" holds for every text, so it can never fail; give the piece of text '
        "to look for",
    ], caught.value.problems


@pytest.mark.parametrize("name", ["all", "doctor", "validate"])
def test_an_experiment_named_like_a_command_is_refused(registry: Registry, name: str, tmp_path: Path) -> None:
    path = _experiment(tmp_path, REQUEST + "expect.fault = { status = 404 }\nexpect.fix = { ok = 1 }\n")
    path = path.rename(tmp_path / f"{name}.toml")
    path.write_text(path.read_text().replace('name = "probe-me"', f'name = "{name}"'))
    with pytest.raises(ExperimentFileError) as caught:
        load_file(registry, path)
    assert f"name: {name!r} is a word of the command line" in str(caught.value), caught.value
