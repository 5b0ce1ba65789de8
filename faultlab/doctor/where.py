"""From the harness's notes of where things happened (``faultlab.inside.sites``) to the ``Location`` a finding
shows: the file relative to the app's directory, and for the HTML report a few lines around it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from faultlab.doctor.report import Finding, Location

__all__ = ["excerpt", "locate", "server_error"]

AROUND = 3  # lines shown before and after the one pointed to
NEAREST_RAISE = "the app's line nearest the raise"
NO_APP_FRAME = "no frame of the app's code in its traceback: a library raised it"


def locate(where: Any, app_dir: Path, role: str = "") -> Location | None:
    """A ``Location`` from the harness's ``{"file", "line", "function"}`` (or a ``Where``); None for nothing."""
    if where is None:
        return None
    if not isinstance(where, dict):
        where = {"file": where.file, "line": where.line, "function": where.function}
    path = str(where["file"])
    shown = Path(path).name
    try:
        relative = os.path.relpath(os.path.realpath(path), os.path.realpath(app_dir))
    except ValueError:  # another drive
        relative = ""
    if relative and not relative.startswith(".."):
        shown = relative
    return Location(shown, int(where["line"]), str(where["function"]), path=path, role=role)


def excerpt(location: Location, around: int = AROUND) -> list[tuple[int, str]]:
    """The lines around the location, numbered from 1 (none when the file cannot be read now)."""
    try:
        lines = Path(location.path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    first = max(1, location.line - around)
    return [(number, lines[number - 1]) for number in range(first, min(len(lines), location.line + around) + 1)]


def server_error(ctx: Any, operation: str, evidence: str, raised: list[str], seen: list[Any]) -> Finding:
    """A 5xx as a finding: its first exception, at the app's line nearest the raise (the first exception of the
    request's records whose traceback passed through the app's code, ``seen``), else no line and why.
    ``ctx`` is the checkup's context (``app_dir`` is what is read)."""
    what = f": {raised[0][:300]}" if raised else " (no exception reached the harness)"
    location = locate(next((where for where in seen if where is not None), None), ctx.app_dir, NEAREST_RAISE)
    unlocated = ""
    if location is None:
        unlocated = NO_APP_FRAME if raised else "no exception reached the harness, so no traceback was seen"
        what += f" ({NO_APP_FRAME})" if raised else ""
    return Finding("server error", operation, evidence + what, location=location, unlocated=unlocated)
