"""The lab's exceptions. Every message says what went wrong and what to do next.

LabError
├── UsageError            exit 2: nothing was started
│   ├── UnknownNameError  an experiment or variant name that does not exist
│   ├── ExperimentFileError   a file that does not parse or validate
│   ├── ExperimentFilesError  several such files, each with its problems
│   ├── OutputDirError    a report directory that cannot be written
│   └── PluginError       a witness or action that breaks its contract (``faultlab.plugins.registry``)
├── ServerError           a server that would not start, answer, or stay up (verdict "error")
├── BackendError          the database behind a run failed (verdict "error")
└── ActionError           an action of the experiment failed (verdict "error")
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from faultlab.exit_codes import ExitCode

__all__ = [
    "ActionError",
    "ExperimentFileError",
    "ExperimentFilesError",
    "LabError",
    "OutputDirError",
    "PluginError",
    "ServerError",
    "UnknownNameError",
    "UsageError",
]


class LabError(Exception):
    """Base of every error the lab reports to a person."""


class UsageError(LabError):
    exit_code = ExitCode.USAGE


def shorten(text: str, limit: int = 60) -> str:
    """What a person typed, echoed back without filling the screen."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class UnknownNameError(UsageError):
    def __init__(self, kind: str, name: str, known: Iterable[str], *, hint: str) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) if len(name) <= 100 else []
        suggestion = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {shorten(name)!r}{suggestion or '.'} {hint}")
        self.name = name
        self.suggestions = close


class ExperimentFileError(UsageError):
    def __init__(self, path: Path, problems: list[str]) -> None:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path}: not a valid experiment file:\n{listing}")
        self.path = path
        self.problems = problems


class ExperimentFilesError(UsageError):
    """Several files that do not parse or validate: every one is reported, not only the first."""

    def __init__(self, errors: list[ExperimentFileError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


class OutputDirError(UsageError):
    pass


class ServerError(LabError):
    """The server under test failed in a way that is not the experiment's fault: the run is an error."""


class BackendError(LabError):
    """The database behind a run (not the app under test) failed: the run is an error."""


class ActionError(LabError):
    """An action step could not do its work; the message names the step."""


class PluginError(UsageError):
    """A plugin that does not keep the contract of ``plugins.registry``: the message names it and the rule. Found
    at registration (exit 2, before anything starts) or, for what a witness returns, during a run (error)."""
