"""An experiment marked ``together``: its fault run and fix run go at once, each on its own server; the
terminal still reads as if they had taken turns; ``--sequential`` and Ctrl+C behave."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import psutil

from faultlab.model.catalogue import load_catalogue
from faultlab.plugins.registry import Registry
from tests.lab_cli import STEP_LINE, Lines, run_lab, start_lab
from tests.servers import lab_processes

TIMED = {
    "async-blocking", "database-locked", "idle-in-transaction", "threadpool-starvation", "shared-session",
    "async-shared-session", "async-background-session",
}  # fmt: skip


def _runs(out: Path, name: str) -> dict[str, tuple[datetime, datetime]]:
    journal = json.loads((out / name / "journal.json").read_text())
    assert journal["verdict"] == "as expected", journal["verdict"]
    return {
        run: (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["ended_at"]))
        for run, r in journal["runs"].items()
    }


def test_experiments_that_time_things_never_run_together(registry: Registry) -> None:
    marked = {e.experiment.name for e in load_catalogue(registry) if e.experiment.together}
    assert marked and not marked & TIMED, marked & TIMED


def test_together_the_runs_overlap_and_the_output_still_takes_turns(tmp_path: Path) -> None:
    result = run_lab("stale-schema", "--out", tmp_path / "out", cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    runs = _runs(tmp_path / "out", "stale-schema")
    assert runs["fix"][0] < runs["fault"][1], f"the fix run began after the fault run ended: {runs}"
    lines = result.stdout.splitlines()
    fix_header = next(i for i, line in enumerate(lines) if line.strip().startswith("fix run"))
    fault_steps = [i for i, line in enumerate(lines) if "List the todos" in line]
    assert fault_steps and fault_steps[0] < fix_header < fault_steps[-1], result.stdout  # one in each run


def test_sequential_runs_the_fix_after_the_fault(tmp_path: Path) -> None:
    result = run_lab("stale-schema", "--sequential", "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = _runs(tmp_path / "out", "stale-schema")
    assert runs["fix"][0] >= runs["fault"][1], runs


def test_ctrl_c_with_both_runs_going_stops_both_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lab = start_lab("leak-hangs", "--out", out, cwd=tmp_path, stderr=subprocess.PIPE)
    servers: list[psutil.Process] = []
    deadline = time.monotonic() + 30
    while len(servers) < 2 and time.monotonic() < deadline:
        servers = lab_processes(lab.pid)
        time.sleep(0.05)
    assert len(servers) == 2, "the two runs' servers were never up at once"
    assert lab.stdout is not None
    lines = Lines(lab.stdout)
    lines.wait_for(STEP_LINE)  # the fault run's first step is judged; its later ones (and the fix run) go on
    signalled = time.monotonic()
    lab.send_signal(signal.SIGINT)
    lines.text()
    _, stderr = lab.communicate(timeout=60)
    took = time.monotonic() - signalled
    assert lab.returncode == 130 and "Traceback" not in stderr, stderr
    _, alive = psutil.wait_procs(servers, timeout=5)
    assert not alive, alive
    journal = json.loads((out / "leak-hangs" / "journal.json").read_text())
    assert journal["verdict"] == "interrupted" and journal["runs"]["fault"]["status"] == "interrupted"
    assert journal["runs"]["fix"]["status"] in ("interrupted", "completed"), journal["runs"]["fix"]["status"]
    assert took < 20, f"the lab took {took:.1f} s to stop"
