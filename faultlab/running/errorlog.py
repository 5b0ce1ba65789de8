"""Read the exceptions the harness recorded (``<run dir>/errors/<pid>.jsonl``), each only once."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from faultlab.plugins.observations import ExceptionRecord, Link

__all__ = ["ErrorLog"]


class ErrorLog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._read: dict[Path, int] = {}  # file -> bytes already read

    def read_new(self) -> list[ExceptionRecord]:
        """Records written since the last call, complete lines only (a line being written waits its turn)."""
        records = []
        for path in sorted(self.directory.glob("*.jsonl")):
            with open(path, "rb") as log:
                log.seek(self._read.get(path, 0))
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._read[path] = self._read.get(path, 0) + len(complete)
            records += [_parse(line, path) for line in complete.splitlines()]
        return records


def _parse(line: bytes, path: Path) -> ExceptionRecord:
    """A line the harness did not write whole (a full disk, a killed worker) is still an exception, in words."""
    try:
        return ExceptionRecord.model_validate(json.loads(line))
    except (ValueError, ValidationError):
        excerpt = line[:120].decode("utf-8", errors="replace")
        return ExceptionRecord(chain=[Link(type="unreadable record", message=f"{path.name}: {excerpt!r}")])
