"""Another connection holds the database's write lock for a while, as a long transaction, a migration or a
backup would: reads go on, writes wait. One mechanism for the catalogue's ``hold_write_lock`` action and the
doctor's event-loop check; how the lock is taken is the backend's (``Backend.take_write_lock``).

A timer releases it, even while the caller is blocked on the database, and ``release`` is safe to call
from any thread, any number of times: a lock never outlives its holder.
"""

from __future__ import annotations

import threading
from typing import Any

from faultlab.backends.base import Backend

__all__ = ["WriteLock"]


class WriteLock:
    def __init__(self) -> None:
        self._connection: Any = None
        self._timer: threading.Timer | None = None
        self._guard = threading.Lock()

    def hold(self, backend: Backend, seconds: float, *, wait_s: float) -> str | None:
        """Take the lock (waiting at most ``wait_s`` for the app's own) and hold it for ``seconds``: how it
        was taken, in words, or None when the app holds a conflicting lock (then nothing is held)."""
        self.release()
        taken = backend.take_write_lock(wait_s)
        if taken is None:
            return None
        connection, how = taken
        with self._guard:
            self._connection = connection
            self._timer = threading.Timer(seconds, self.release)
            self._timer.daemon = True
            self._timer.start()
        return how

    def release(self) -> None:
        with self._guard:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._connection is not None:
                try:
                    self._connection.rollback()
                finally:
                    self._connection.close()
                    self._connection = None
