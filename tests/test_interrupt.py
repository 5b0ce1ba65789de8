"""Ctrl+C and SIGTERM in the middle of a run, and two labs at once: no orphans, nothing mixed up."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.lab_cli import STEP_LINE, Lines, run_lab, start_lab
from tests.servers import lab_processes


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_stops_every_server_and_reports_interrupted(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "reports"
    lab = start_lab("missing-yield", "--out", out, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        parent = psutil.Process(lab.pid)
        deadline = time.monotonic() + 30
        servers: list[psutil.Process] = []
        while not servers and time.monotonic() < deadline:
            servers = lab_processes(parent.pid)
            time.sleep(0.05)
        assert servers, "run_lab.py never started a server"
        workdir = Path(servers[0].cwd()).parent  # <temp>/faultlab-missing-yield-*/fault
        assert lab.stdout is not None
        lines = Lines(lab.stdout)
        lines.wait_for(STEP_LINE)  # the fault run's first step is judged: the run is under way
        lab.send_signal(sig)
        stdout = lines.text(deadline_s=30)
        _, stderr = lab.communicate(timeout=30)
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()

    assert lab.returncode == 130, stderr
    _, alive = psutil.wait_procs(servers, timeout=5)
    assert not alive, f"servers left running: {alive}"
    assert not workdir.exists(), f"temp dir left behind: {workdir}"
    assert "interrupted" in stdout
    journal = json.loads((out / "missing-yield" / "journal.json").read_text())
    assert journal["verdict"] == "interrupted"
    assert journal["runs"]["fault"]["status"] == "interrupted"
    assert "interrupted" in (out / "missing-yield" / "report.md").read_text()


def test_keep_leaves_the_temp_dir_and_says_where(tmp_path: Path) -> None:
    result = run_lab("stale-schema", "--keep", "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    kept = [line.split("kept: ", 1)[1].strip() for line in result.stdout.splitlines() if "kept: " in line]
    assert kept, result.stdout
    workdir = Path(kept[0])
    try:
        assert (workdir / "fault" / "todos.db").is_file() and (workdir / "fix" / "server.log").is_file()
        # Kept means the user's now: a later lab, sweeping what dead labs left, leaves it alone.
        from faultlab.backends import sweep

        assert str(workdir) not in sweep.sweep_temp_dirs(workdir.parent) and workdir.is_dir()
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def test_two_labs_at_once_do_not_collide(tmp_path: Path) -> None:
    out = tmp_path / "shared-reports"
    labs = [start_lab("stale-schema", "--json", "--out", out, cwd=tmp_path, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [lab.communicate(timeout=120) for lab in labs]
    for lab, (stdout, stderr) in zip(labs, outputs, strict=True):
        assert lab.returncode == 0, stderr
        assert json.loads(stdout)["experiments"][0]["verdict"] == "as expected"
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "stale-schema"], "staging files left behind"
    journal = json.loads((out / "stale-schema" / "journal.json").read_text())
    assert journal["verdict"] == "as expected" and set(journal["runs"]) == {"fault", "fix"}
    assert sorted(p.name for p in (out / "stale-schema").iterdir()) == [
        "fault-server.log",
        "fix-server.log",
        "journal.json",
        "report.html",
        "report.md",
    ]
