"""Who made a temp dir, a database or a role: the lab's process, told apart from a later process that
happens to get the same pid by its start time, and from another machine's by the host name."""

from __future__ import annotations

import functools
import json
import os
import socket

import psutil

__all__ = ["Owner", "me"]

START_TOLERANCE_S = 1.0


class Owner:
    def __init__(self, pid: int, started: float, host: str) -> None:
        self.pid, self.started, self.host = pid, started, host

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "started": self.started, "host": self.host})

    @classmethod
    def from_json(cls, text: str) -> Owner | None:
        """None for anything that is not an owner record (then nobody may sweep what it marks)."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), float(data["started"]), str(data["host"]))
        except (ValueError, TypeError, KeyError):
            return None

    def is_gone(self) -> bool:
        """True only when this machine's process that made it is certainly no longer running."""
        if self.host != socket.gethostname():
            return False  # another machine's lab: not ours to judge
        try:
            started: float = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False
        return abs(started - self.started) > START_TOLERANCE_S


@functools.cache
def me() -> Owner:
    return Owner(os.getpid(), psutil.Process().create_time(), socket.gethostname())
