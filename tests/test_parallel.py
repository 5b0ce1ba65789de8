"""``-j N``: experiments at the same time, each in a lab process of its own, with the same evidence and the
same clean-up as one at a time."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from faultlab.backends import sweep
from tests.lab_cli import RUN_LAB, run_lab
from tests.servers import lab_processes


def test_two_experiments_at_once_each_report_and_one_index(tmp_path: Path) -> None:
    result = run_lab("stale-schema", "detached-instance", "-j", "2", "--json", "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert sorted(e["name"] for e in summary["experiments"]) == ["detached-instance", "stale-schema"]
    assert all(e["verdict"] == "as expected" for e in summary["experiments"])
    assert "running 2 experiments, 2 at a time" in result.stderr
    index = (tmp_path / "out" / "index.html").read_text()
    assert 'href="stale-schema/report.html"' in index and 'href="detached-instance/report.html"' in index
    for name in ("stale-schema", "detached-instance"):
        assert (tmp_path / "out" / name / "journal.json").is_file()


def test_a_bad_jobs_value_is_a_usage_error(tmp_path: Path) -> None:
    result = run_lab("all", "-j", "0", cwd=tmp_path)
    assert result.returncode == 2 and "use 1 to 64" in result.stderr, result.stderr


def test_sigterm_to_a_parallel_lab_stops_every_child_and_server(tmp_path: Path) -> None:
    lab = subprocess.Popen(
        [sys.executable, str(RUN_LAB), "missing-yield", "database-locked", "-j", "2", "--out", str(tmp_path / "o")],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Each experiment's child lab has a server up (missing-yield's two runs start theirs at once: two servers are
    # not yet both experiments), so both are past their start-up and will say they were interrupted.
    deadline = time.monotonic() + 60
    serving: set[str] = set()
    while time.monotonic() < deadline and serving != {"missing-yield", "database-locked"}:
        for server in lab_processes(lab.pid):
            with contextlib.suppress(psutil.Error):
                serving.add(Path(server.cwd()).parent.name.removeprefix(sweep.PREFIX).rsplit("-", 1)[0])
        time.sleep(0.05)
    assert serving == {"missing-yield", "database-locked"}, f"servers up for {serving}, not both experiments"
    family = psutil.Process(lab.pid).children(recursive=True)
    lab.send_signal(signal.SIGTERM)
    _stdout, stderr = lab.communicate(timeout=90)
    assert lab.returncode == 130, stderr
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, f"left running: {alive}"
    for name in ("missing-yield", "database-locked"):
        assert "interrupted" in (tmp_path / "o" / name / "journal.json").read_text(), name


def test_a_child_gets_every_option_of_its_parent_as_data() -> None:
    """Options reach ``-j`` children as data, so a new option cannot be dropped on the way."""
    from dataclasses import fields, replace

    from faultlab.cli.options import Options as _Options

    parent = _Options(
        out=Path("reports"), keep=True, as_json=False, backend="postgresql", postgres_url="postgresql://u:p@h/d",
        validate=True, junit=Path("j.xml"), open_index=True, predictions={"x": ["y"]}, jobs=3,
        experiment_dirs=(Path("mine"),), sequential=True,
    )  # fmt: skip
    assert {field.name for field in fields(parent)} == {
        "out", "keep", "as_json", "backend", "postgres_url", "validate", "junit", "open_index", "predictions",
        "jobs", "experiment_dirs", "sequential",
    }, "a new option: decide what a -j child does with it in _Options.for_child"  # fmt: skip
    child = _Options.from_parent(parent.for_child())
    assert child == replace(parent, as_json=True, jobs=1, junit=None, open_index=False, predictions=None)
