"""The doctor's verdict and its exit code: "nothing found" only when every check that applies to the run ran.

A check applies to a run unless it belongs to the other database (on SQLite: the PostgreSQL-only checks,
which ``--db postgresql`` runs) or to an option the run was not given (``--compare-db``): those are *not
applicable*, listed with how to include them, and never change the verdict. A check that applies and could
not run on this app (no engine to watch, no id to read by, no ``/proc`` to read, ...) is *not run*: without
findings, the verdict is *incomplete*, never "nothing found". Findings win over incomplete; an interrupted
checkup is interrupted whatever it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faultlab.exit_codes import ExitCode

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FINDINGS",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "NotRun",
    "Verdict",
    "judge",
    "sentence",
]

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = (
    ExitCode.OK,
    ExitCode.NOT_OK,
    ExitCode.USAGE,
    ExitCode.INCOMPLETE,
    ExitCode.INTERRUPTED,
)

Verdict = Literal["nothing found", "findings", "incomplete", "interrupted"]


@dataclass
class NotRun:
    """A check that did not run: which, why, and what the user can do about it."""

    check: str
    reason: str
    remedy: str = ""

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}" + (f" ({self.remedy})" if self.remedy else "")


def judge(*, findings: int, not_run: int, interrupted: bool) -> tuple[Verdict, int]:
    """The verdict and the exit code: interrupted, then findings, then incomplete, else nothing found."""
    if interrupted:
        return "interrupted", EXIT_INTERRUPTED
    if findings:
        return "findings", EXIT_FINDINGS
    if not_run:
        return "incomplete", EXIT_INCOMPLETE
    return "nothing found", EXIT_CLEAN


def sentence(verdict: Verdict, *, findings: int, not_run: int) -> str:
    """The verdict in words, the same in the terminal, report.md and report.html."""
    if verdict == "interrupted":
        return f"interrupted: {findings} finding(s) until then"
    if verdict == "findings":
        return f"{findings} finding(s)" + (f"; {not_run} check(s) did not run" if not_run else "")
    if verdict == "incomplete":
        return f"incomplete: nothing found, but {not_run} check(s) did not run"
    return "nothing found: every check that applies to this run ran"
