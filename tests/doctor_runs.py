"""One doctor checkup of each app the tests read, per test session, shared by every test that reads it (as
tests/catalogue_runs.py shares the catalogue's runs): ``doctor_runs.get(target, app_dir)`` runs
``run_lab.py doctor TARGET --app-dir DIR --json`` once, under a file lock, and hands every later reader, in any
worker, the same answer and report directory."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from tests.lab_cli import run_lab

__all__ = ["DoctorRun", "DoctorRuns"]


@dataclass(frozen=True)
class DoctorRun:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path  # where it ran: nothing but its --out dir may appear there
    out: Path  # its --out dir

    @property
    def report(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed


class DoctorRuns:
    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, target: str, app_dir: Path) -> DoctorRun:
        key = hashlib.sha256(f"{target}\0{app_dir}".encode()).hexdigest()[:16]
        cwd = self.root / key
        saved = self.root / f"{key}.json"
        with FileLock(self.root / f"{key}.lock"):
            if not saved.exists():
                cwd.mkdir()
                done: subprocess.CompletedProcess[str] = run_lab(
                    "doctor", target, "--app-dir", app_dir, "--json", "--out", cwd / "out", cwd=cwd
                )
                saved.write_text(json.dumps([done.returncode, done.stdout, done.stderr]), encoding="utf-8")
            returncode, stdout, stderr = json.loads(saved.read_text(encoding="utf-8"))
        return DoctorRun(returncode, stdout, stderr, cwd, cwd / "out")
