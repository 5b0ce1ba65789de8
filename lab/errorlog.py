"""Read the exceptions the harness recorded (``<run dir>/errors/<pid>.jsonl``), each only once."""

from __future__ import annotations

import json
from pathlib import Path

from lab.observations import ExceptionRecord

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
            for line in complete.splitlines():
                records.append(ExceptionRecord.model_validate(json.loads(line)))
        return records
