"""``all -j N``: experiments at the same time, each in a lab process of its own.

A process per experiment, not a thread: each keeps its own signal handling, clean-up and servers, exactly
as when it runs alone, so a parallel run proves what a single run proves. Each child's progress is shown as
one block when it finishes (interleaved lines would be unreadable); its verdict comes back as the JSON
summary it prints, its evidence as the journal in its report. Ctrl+C reaches every child (they share the
terminal's process group) and each ends as an interrupted run does; a lab killed outright takes its children
with it (Linux: the parent-death signal), and they clean up as after SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from faultlab.interrupts import deferred
from faultlab.model.results import ExperimentResult

__all__ = ["CHILD_ENV", "OPTIONS_ENV", "Child", "ChildResult", "child_env", "run_children"]

CHILD_ENV = "FAULTLAB_PARALLEL_CHILD"  # set in a child: the parent writes the index page, once, for all
OPTIONS_ENV = "FAULTLAB_CHILD_OPTIONS"  # the parent's options, as JSON (faultlab.cli): data, not a rebuilt command line
STOP_GRACE_S = 60.0  # an interrupted child writes its report and stops its servers well within this


@dataclass
class Child:
    name: str
    argv: list[str]


@dataclass
class ChildResult:
    name: str
    exit_code: int
    output: str  # its progress, as it would have printed it
    summary: dict[str, object] | None  # its --json summary of the experiment
    result: ExperimentResult | None  # read back from its report's journal


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the lab that started it dies, however it dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Running:
    child: Child
    process: subprocess.Popen[bytes]
    stdout: IO[bytes]  # temp files, not pipes: a child that prints a lot never blocks on a full pipe
    stderr: IO[bytes]


def _start(child: Child, env: dict[str, str]) -> _Running:
    stdout, stderr = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 (closed by _read)
    process = subprocess.Popen(
        [sys.executable, "-m", "faultlab", *child.argv],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        preexec_fn=_die_with_parent,  # the lab's own threads are idle here: nothing to deadlock
    )
    return _Running(child, process, stdout, stderr)


def _read(file: IO[bytes]) -> str:
    file.seek(0)
    text = file.read().decode("utf-8", errors="replace")
    file.close()
    return text


def _collect(running: _Running) -> ChildResult:
    running.process.wait()
    stdout, stderr = _read(running.stdout), _read(running.stderr)
    summary: dict[str, object] | None = None
    result: ExperimentResult | None = None
    try:
        experiments = json.loads(stdout).get("experiments") or []
        summary = experiments[0] if experiments else None
    except (ValueError, AttributeError):
        summary = None
    report = summary.get("report") if summary else None
    if isinstance(report, str):
        try:
            result = ExperimentResult.model_validate_json((Path(report) / "journal.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = None
        else:
            result.report_dir = report  # the journal is written before its place is known
    return ChildResult(running.child.name, running.process.returncode, stderr, summary, result)


def run_children(
    children: list[Child], jobs: int, env: dict[str, str], finished: Callable[[ChildResult], None]
) -> tuple[list[ChildResult], bool]:
    """Run ``children`` ``jobs`` at a time; ``finished`` is told of each as it ends, in the order they end.
    True when it was interrupted (Ctrl+C, SIGTERM): then the ones not yet started never start."""
    waiting = list(children)
    running: list[_Running] = []
    done: list[ChildResult] = []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                with deferred():  # started and registered at once: an interrupt cannot orphan it in between
                    running.append(_start(waiting.pop(0), env))
            for entry in list(running):
                if entry.process.poll() is not None:
                    running.remove(entry)
                    done.append(_collect(entry))
                    finished(done[-1])
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(running, done, finished)
        return done, True
    except BaseException:
        _stop(running, done, finished)
        raise
    return done, False


def _stop(running: list[_Running], done: list[ChildResult], finished: Callable[[ChildResult], None]) -> None:
    """Every running child ends as an interrupted run does, with its report (they may have had the Ctrl+C
    already: a second one is noted, not obeyed, while they clean up); none is left running. A further
    Ctrl+C here waits too: the children's reports and this run's index must not be cut short."""
    with deferred():
        for entry in running:
            if entry.process.poll() is None:
                entry.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        for entry in running:
            try:
                entry.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                entry.process.kill()
            done.append(_collect(entry))
            finished(done[-1])


def child_env(columns: int, colour: bool) -> dict[str, str]:
    """The children print as they would to this terminal: its width, its colours."""
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONUNBUFFERED": "1", CHILD_ENV: "1"}
    if colour:
        env["FORCE_COLOR"] = "1"
    else:
        env.pop("FORCE_COLOR", None)
    return env
