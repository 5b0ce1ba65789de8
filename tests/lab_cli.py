"""Run ``run_lab.py`` as a person would: a real subprocess, in a temp dir."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_LAB = PROJECT_ROOT / "run_lab.py"
# A step of a run as the terminal shows it once the step is judged: "     1. List the todos ✓"
STEP_LINE = re.compile(r"^\s+\d+\. \S")


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


def start_lab(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, stderr: int = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    """``run_lab.py`` left running, its output unbuffered for a test to read line by line (``Lines``). Its stderr
    goes nowhere unless a test reads it (``stderr=subprocess.PIPE``): an unread pipe could fill and stall the lab."""
    return subprocess.Popen(
        [sys.executable, str(RUN_LAB), *map(str, args)],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
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


class Lines:
    """A child's output, read line by line in a thread of its own: a test waits for a line with a deadline (and
    never on a child that has stopped writing), and gets the whole output at the end."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._ended = False
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._lines.put(line)
        finally:
            stream.close()
            self._lines.put(None)

    def _next(self, deadline: float) -> str | None:
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            self._ended = True
        else:
            self.seen.append(line)
        return line

    def wait_for(self, pattern: str | re.Pattern[str], *, deadline_s: float = 60.0) -> str:
        """The first line (from here on) that contains ``pattern`` (a text) or matches it (a regex)."""
        deadline = time.monotonic() + deadline_s
        while not self._ended:
            try:
                line = self._next(deadline)
            except TimeoutError:
                break
            if line is not None and (pattern in line if isinstance(pattern, str) else pattern.search(line)):
                return line
        ended = "the output ended" if self._ended else f"none within {deadline_s:.0f} s"
        raise AssertionError(f"no line with {pattern!r} ({ended}); the output:\n{''.join(self.seen)}")

    def poll(self, pattern: str, *, within_s: float) -> bool:
        """Whether a line with ``pattern`` comes within ``within_s`` seconds (False at the end of the output)."""
        try:
            self.wait_for(pattern, deadline_s=within_s)
        except AssertionError:
            return False
        return True

    def text(self, *, deadline_s: float = 60.0) -> str:
        """Everything, once the output has ended."""
        deadline = time.monotonic() + deadline_s
        while not self._ended:
            try:
                self._next(deadline)
            except TimeoutError:
                seen = "".join(self.seen)
                raise AssertionError(f"the output did not end within {deadline_s:.0f} s:\n{seen}") from None
        self._reader.join()
        return "".join(self.seen)
