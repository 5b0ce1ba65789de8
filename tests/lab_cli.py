"""Run ``run_lab.py`` as a person would: a real subprocess, in a temp dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_LAB = PROJECT_ROOT / "run_lab.py"


def run_lab(
    *args: str | Path, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN_LAB), *map(str, args)],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def await_handlers(pid: int, *signals: signal.Signals, deadline_s: float = 30.0) -> None:
    """Until the process ``pid`` catches every one of ``signals`` (its ``SigCgt`` mask in /proc): before that, a
    signal would find the interpreter still starting, with no handler of the program's to end it in one line.

    Python itself catches SIGINT from before its ``site`` import: a SIGINT bit says nothing about the program."""
    wanted = sum(1 << (sig - 1) for sig in signals)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            raise AssertionError(f"process {pid} ended before it caught {[s.name for s in signals]}") from None
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught & wanted == wanted:
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not catch {[s.name for s in signals]} within {deadline_s:.0f} s")
