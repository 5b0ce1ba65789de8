"""Servers that will not start, die mid-run, or hang: the run ends in bounded time with evidence."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from faultlab.cli import main as cli_main
from faultlab.model.catalogue import Entry, load_catalogue, load_file
from faultlab.model.results import Verdict
from faultlab.model.spec import schema
from faultlab.plugins.registry import Registry
from faultlab.running.orchestrate import run_experiment
from faultlab.server import launch as lab_server

FIXTURES = Path(__file__).parent / "fixtures"


def _experiment_with_fault_variant(registry: Registry, variant: str, tmp_path: Path) -> Entry:
    source = (FIXTURES / "experiments" / "request-timeout.toml").read_text()
    path = tmp_path / "broken-server.toml"
    path.write_text(
        source.replace('name = "request-timeout"', 'name = "broken-server"').replace(
            'variant = "missing_yield"', f'variant = "{variant}"'
        )
    )
    return Entry(load_file(registry, path), path)


def test_a_variant_that_crashes_at_import_is_an_error_with_its_log(
    registry: Registry, tmp_path: Path, test_variants: None
) -> None:
    started = time.monotonic()
    result = run_experiment(
        registry, _experiment_with_fault_variant(registry, "crash_on_import", tmp_path), tmp_path / "out"
    )
    assert time.monotonic() - started < 30
    assert result.verdict is Verdict.ERROR and result.verdict.exit_code == 1
    error = result.runs["fault"].error or ""
    assert "exited with code" in error and "this variant is broken on purpose" in error, error
    assert result.runs["fix"].status == "completed"  # the fix run still ran and is reported
    assert "ended early" in (tmp_path / "out" / "broken-server" / "report.md").read_text()


def test_a_variant_that_never_gets_ready_is_stopped_at_the_deadline(
    registry: Registry, tmp_path: Path, test_variants: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline (3 s here) is counted from the moment the server hangs in its start-up: a cold start's
    imports alone can take longer than that on a busy machine, and would leave nothing in the log to show."""
    monkeypatch.setattr(lab_server, "START_DEADLINE_S", 3.0)
    real_await_port = lab_server.LabServer._await_port
    waited: list[float] = []

    def await_port_once_hung(server: lab_server.LabServer, offset: int, deadline_s: float) -> int:
        if "never_ready" not in server.target:
            return real_await_port(server, offset, deadline_s)
        hung = time.monotonic() + 60
        while b"Waiting for application startup" not in server.log_path.read_bytes()[offset:]:
            assert time.monotonic() < hung, f"the server never reached its start-up: {server.log_path.read_text()}"
            time.sleep(0.02)
        started = time.monotonic()
        try:
            return real_await_port(server, offset, deadline_s)
        finally:
            waited.append(time.monotonic() - started)

    monkeypatch.setattr(lab_server.LabServer, "_await_port", await_port_once_hung)
    result = run_experiment(
        registry, _experiment_with_fault_variant(registry, "never_ready", tmp_path), tmp_path / "out"
    )
    assert result.verdict is Verdict.ERROR
    assert len(waited) == 1 and 3.0 <= waited[0] < 3.0 + 5, waited
    error = result.runs["fault"].error or ""
    assert "did not start listening within 3 s" in error and "Waiting for application startup" in error, error


def test_a_server_that_dies_mid_run_is_an_error(registry: Registry, tmp_path: Path, test_variants: None) -> None:
    result = run_experiment(
        registry, _experiment_with_fault_variant(registry, "dies_mid_run", tmp_path), tmp_path / "out"
    )
    assert result.verdict is Verdict.ERROR
    assert "exited with code 3 during the run" in (result.runs["fault"].error or "")


def test_the_cli_exits_1_when_a_server_fails(registry: Registry, tmp_path: Path, test_variants: None) -> None:
    entry = _experiment_with_fault_variant(registry, "crash_on_import", tmp_path)
    code = cli_main(["--experiments", str(entry.path.parent), "--out", str(tmp_path / "out"), "broken-server"])
    assert code == 1


def test_a_hanging_request_is_cut_off_and_recorded_as_a_timeout(registry: Registry, tmp_path: Path) -> None:
    entry = load_catalogue(registry, [FIXTURES / "experiments"]).get("request-timeout")
    started = time.monotonic()
    result = run_experiment(registry, entry, tmp_path)
    assert time.monotonic() - started < 30
    fault = result.runs["fault"]
    assert fault.status == "completed" and len(fault.steps) == 2, (fault.status, fault.error)
    burst = fault.steps[-1].observation.values
    assert (burst["ok"], burst["timeouts"]) == (15, 5), burst
    assert result.verdict is Verdict.AS_EXPECTED


def test_a_busy_port_does_not_break_a_run(registry: Registry, tmp_path: Path) -> None:
    """The lab never uses a fixed port: with 8000 (the app's default) taken, runs go on."""
    with socket.socket() as squatter:
        try:
            squatter.bind(("127.0.0.1", 8000))
            squatter.listen()
        except OSError:
            pass  # already busy: the condition under test holds anyway
        result = run_experiment(registry, load_catalogue(registry).get("stale-schema"), tmp_path)
    assert result.verdict is Verdict.AS_EXPECTED


def test_experiment_model_rejects_a_run_without_expectations(registry: Registry) -> None:
    with pytest.raises(ValueError, match=r"no step has an expect\.fix that applies on sqlite"):
        schema(registry).model_validate(
            {
                "name": "x",
                "title": "x",
                "fault": {"variant": "app"},
                "fix": {"variant": "app"},
                "steps": [{"kind": "probe", "expect": {"fault": {"db_exists": True}}}],
                "explain": {"why": "w", "fix": "f", "remember": "r"},
            }
        )


def test_an_action_that_fails_on_its_own_ends_the_run_as_an_error_naming_the_step(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the lab's traceback: the database refusing an action's statement is the run's error, in words."""
    import sqlite3

    from faultlab.actions.lock import HoldWriteLock

    def refused(self: HoldWriteLock, ctx: object, params: object) -> str:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(HoldWriteLock, "run", refused)
    result = run_experiment(registry, load_catalogue(registry).get("database-locked"), tmp_path / "out")
    assert result.verdict is Verdict.ERROR
    for run in ("fault", "fix"):
        error = result.runs[run].error or ""
        assert "(hold_write_lock) failed: OperationalError: disk I/O error" in error, error
        assert error.startswith("step "), error
