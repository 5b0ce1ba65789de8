"""The SQL the app ran, kept by the harness and read by the lab from outside, like the counters in ``stats``.

Per server process, two files in the run's stats directory: ``<pid>.sql`` holds each distinct statement
once (``[slot, text]`` in JSON per line, written the first time it is seen) and ``<pid>.sqlcount`` a fixed array of
64-bit pairs, one per line of the text file, updated in place with ``pack_into``: how many times the
statement ran, and the number (in this process) of its latest run, so a step's statements can be listed in
the order they last ran. So a statement that
runs a thousand times costs the server a dictionary lookup and one integer write, never a file write or
an allocation the garbage collector tracks; the lab reads both files without sending anything in.

The statement text is stored as the driver got it (placeholders, not values: no parameter is ever
recorded) and shortened; ``normalize`` makes it readable and the same on both backends.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
import threading
from pathlib import Path

__all__ = ["MAX_DISTINCT", "StatementWriter", "normalize", "read_statements"]

MAX_DISTINCT = 512  # the last slot counts every statement beyond the others ("other statements")
MAX_STORED_CHARS = 2000
OTHER = "(other statements: more than the lab keeps apart)"
_SLOT = struct.Struct("<qq")  # count, number of the latest run
_PLACEHOLDER = re.compile(r"(?:%\(\w+\)s|%s|\$\d+|(?<![:\w]):\w+)(?:::\w+)?")
_SPACE = re.compile(r"\s+")
_VALUES = re.compile(r"\?(?:, \?){3,}")


def normalize(statement: str) -> str:
    """One line, every placeholder (``%(name)s``, ``%s``, ``$1``, ``:name``, with a cast ``::INTEGER`` if
    PostgreSQL's dialect added one) written ``?``, long lists of
    them shortened: ``IN (?, ?, ?, ?, ?)`` becomes ``IN (?, … 5 values)``."""
    text = _PLACEHOLDER.sub("?", _SPACE.sub(" ", statement).strip())
    return _VALUES.sub(lambda m: f"?, … {m.group(0).count('?')} values", text)


class StatementWriter:
    """The harness's side: one slot per distinct statement string, counted in shared memory."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.text_path = directory / f"{os.getpid()}.sql"
        self.count_path = directory / f"{os.getpid()}.sqlcount"
        self.text_path.write_text("", encoding="utf-8")
        self.count_path.write_bytes(bytes(_SLOT.size * MAX_DISTINCT))
        with open(self.count_path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), _SLOT.size * MAX_DISTINCT)
        self._slots: dict[str, int] = {}
        self._counts = [0] * MAX_DISTINCT
        self._runs = 0
        # Re-entrant, like the counters' lock: a garbage collection started inside ``record`` must not
        # deadlock this thread if something it frees runs SQL.
        self._lock = threading.RLock()

    def record(self, statement: str) -> None:
        with self._lock:
            slot = self._slots.get(statement)
            if slot is None:
                slot = self._new_slot(statement)
            self._counts[slot] += 1
            self._runs += 1
            _SLOT.pack_into(self._map, slot * _SLOT.size, self._counts[slot], self._runs)

    def _new_slot(self, statement: str) -> int:
        if len(self._slots) >= MAX_DISTINCT:
            return MAX_DISTINCT - 1  # counted with the others, its text not kept: the map stops growing
        first_other = len(self._slots) == MAX_DISTINCT - 1
        slot = min(len(self._slots), MAX_DISTINCT - 1)
        self._slots[statement] = slot  # taken before anything below can start a nested record()
        if slot < MAX_DISTINCT - 1 or first_other:
            # The text is on disk before its count moves, so the reader never sees a count without a name.
            text = OTHER if slot == MAX_DISTINCT - 1 else statement[:MAX_STORED_CHARS]
            with open(self.text_path, "a", encoding="utf-8") as f:
                f.write(json.dumps([slot, text]) + "\n")
        return slot


def _read_one(text_path: Path) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    try:
        data = text_path.with_suffix(".sqlcount").read_bytes()
        lines = text_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return found
    for line in lines:
        try:
            slot, text = json.loads(line)
        except ValueError:  # a line being written right now: its count has not moved yet
            continue
        if not 0 <= slot < MAX_DISTINCT:
            continue
        count, latest = _SLOT.unpack_from(data, slot * _SLOT.size)
        if count:
            found.append((normalize(text), count, latest))
    return found


def read_statements(directory: Path, pids: set[int] | None = None) -> dict[str, tuple[int, int]]:
    """Each (normalized) statement: how many times it ran, summed over the server's processes, and the
    number of its latest run (in its process: an order within one process, not across workers)."""
    total: dict[str, tuple[int, int]] = {}
    for path in sorted(directory.glob("*.sql")):
        if pids is None or int(path.stem) in pids:
            for text, count, latest in _read_one(path):
                before, last = total.get(text, (0, 0))
                total[text] = (before + count, max(last, latest))
    return total
