"""Counters the harness keeps in a shared-memory file and the runner reads from outside the server.

Reading them sends nothing into the served process: no request, no allocation, no work on its event
loop. So sampling after every request observes the same server as sampling never (see
``tests/test_observation.py``), and the counters can still be read while the served loop is blocked.

One file per server process (``<pid>.stats`` in the run's stats directory), a fixed array of signed
64-bit integers. A plugin's own counters (``faultlab.inside.extensions``) are kept the same way, in
``<pid>.<name>.counters`` files with the fields it names. The writer bumps a sequence number before and
after each update (odd while writing); the reader retries until it sees the same even number on both sides,
so it never mixes two updates.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["FIELDS", "Counters", "StatsWriter", "read_all", "read_counters"]

MAGIC = 0x46_4C_41_42  # "FLAB"
HEADER = ("magic", "sequence", "pid")
FIELDS = (
    *HEADER,
    "engine",  # 1 when the harness found the app's engine and watches its pool
    "requests_started",
    "requests_finished",
    "exceptions",
    "pool_size",  # -1: the pool has no fixed size (NullPool, StaticPool) or no engine was found
    "pool_checked_out",
    "pool_open",  # DBAPI connections open (checked in + checked out)
    "pool_checkouts",
    "pool_connects",
    "pool_invalidations",
)
COUNTERS_SUFFIX = ".counters"


@dataclass(frozen=True)
class Counters:
    """One consistent reading of a server process's counters (summed over processes by ``read_all``)."""

    processes: int = 0
    engine: int = 0
    requests_started: int = 0
    requests_finished: int = 0
    exceptions: int = 0
    pool_size: int = -1
    pool_checked_out: int = 0
    pool_open: int = 0
    pool_checkouts: int = 0
    pool_connects: int = 0
    pool_invalidations: int = 0

    @property
    def in_flight(self) -> int:
        return self.requests_started - self.requests_finished

    @property
    def pool_overflow(self) -> int | None:
        """Connections open beyond ``pool_size`` (what QueuePool calls overflow); None without a sized pool."""
        return None if self.pool_size < 0 else max(0, self.pool_open - self.pool_size)

    def __add__(self, other: Counters) -> Counters:
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        sizes = [s for s in (self.pool_size, other.pool_size) if s >= 0]
        summed["pool_size"] = sum(sizes) if sizes else -1
        return Counters(**summed)


class StatsWriter:
    """The harness's side: a small file, mapped once, updated in place under a lock.

    An update writes single integers with ``pack_into`` (no tuple, no list, nothing the garbage
    collector tracks), so keeping count does not move the served process's collector.
    """

    def __init__(self, directory: Path, name: str | None = None, counters: Sequence[str] = FIELDS[3:]) -> None:
        """The harness's own counters (no ``name``), or a plugin's: ``<pid>.<name>.counters`` with ``counters``."""
        directory.mkdir(parents=True, exist_ok=True)
        layout = (*HEADER, *counters)
        self._index = {field: i for i, field in enumerate(layout)}
        file_name = f"{os.getpid()}.stats" if name is None else f"{os.getpid()}.{name}{COUNTERS_SUFFIX}"
        self.path = directory / file_name
        initial = [0] * len(layout)
        initial[self._index["magic"]] = MAGIC
        initial[self._index["pid"]] = os.getpid()
        if "pool_size" in self._index and name is None:
            initial[self._index["pool_size"]] = -1
        # Written aside and renamed: a reader never sees a file that is there but not yet whole.
        staging = directory / f".{file_name}.new"
        with open(staging, "wb") as f:
            f.write(struct.pack(f"<{len(layout)}q", *initial))
        os.replace(staging, self.path)
        with open(self.path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), len(layout) * 8)
        self._values = initial
        self._lock = threading.RLock()
        self._depth = 0

    def _write(self, index: int, value: int) -> None:
        self._values[index] = value
        struct.pack_into("<q", self._map, index * 8, value)

    def _update(self, index: int, value: int | None, amount: int = 0) -> None:
        # Re-entrant: a garbage collection inside an update can fire a pool event (a leaked connection
        # returned) in this same thread. Only the outermost update moves the sequence number.
        sequence = self._index["sequence"]
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    self._write(sequence, self._values[sequence] + 1)  # odd: an update is under way
                self._write(index, self._values[index] + amount if value is None else value)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._write(sequence, self._values[sequence] + 1)  # even: done

    def add(self, name: str, amount: int = 1) -> None:
        self._update(self._index[name], None, amount)

    def put(self, name: str, value: int) -> None:
        self._update(self._index[name], value)


def _read_values(path: Path, layout: Sequence[str], *, attempts: int = 200) -> dict[str, int] | None:
    """One consistent reading of one file: the same even sequence number before and after."""
    size = len(layout) * 8
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    for _ in range(attempts):
        if len(data) != size:
            return None
        values = dict(zip(layout, struct.unpack(f"<{len(layout)}q", data), strict=True))
        if values["magic"] == MAGIC and values["sequence"] % 2 == 0:
            again = path.read_bytes()
            if again[8:16] == data[8:16]:
                return values
            data = again
            continue
        time.sleep(0.0005)
        data = path.read_bytes()
    return None


def _read_one(path: Path) -> Counters | None:
    values = _read_values(path, FIELDS)
    if values is None:
        return None
    return Counters(**{f.name: values[f.name] for f in fields(Counters) if f.name != "processes"}, processes=1)


def read_all(directory: Path, pids: set[int] | None = None) -> Counters | None:
    """The counters of every server process in ``directory`` (of ``pids`` only, when given), summed.

    None when no process has published any yet (the harness did not start, or is not in this server).
    """
    total: Counters | None = None
    for path in sorted(directory.glob("*.stats")):
        if pids is not None and int(path.stem) not in pids:
            continue
        one = _read_one(path)
        if one is not None:
            total = one if total is None else total + one
    return total


def read_counters(
    directory: Path, name: str, counters: Sequence[str], pids: set[int] | None = None
) -> dict[str, int] | None:
    """A plugin's counters (``StatsWriter(directory, name, counters)``), summed over the server's processes;
    None when none has published them."""
    total: dict[str, int] | None = None
    for path in sorted(directory.glob(f"*.{name}{COUNTERS_SUFFIX}")):
        pid = path.name.split(".", 1)[0]
        if not pid.isdigit() or (pids is not None and int(pid) not in pids):
            continue
        values = _read_values(path, (*HEADER, *counters))
        if values is not None:
            one = {counter: values[counter] for counter in counters}
            total = one if total is None else {k: total[k] + v for k, v in one.items()}
    return total
