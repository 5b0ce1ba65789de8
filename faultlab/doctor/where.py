"""From the harness's notes of where things happened (``faultlab.inside.sites``) to the ``Location`` a finding
shows: the file relative to the app's directory, and for the HTML report a few lines around it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from faultlab.doctor.report import Location

__all__ = ["excerpt", "locate"]

AROUND = 3  # lines shown before and after the one pointed to


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
