"""Another connection holds the app's database's write lock for a moment (``faultlab.backends.write_lock``, as the
catalogue's ``hold_write_lock``): reads go on, writes wait. The doctor holds it while a write runs, so that a
route that waits on the database on the event loop (sync work in ``async def``) shows as a blocked loop, as it
does in production when a migration, a backup or a long transaction holds the lock (the catalogue's
async-blocking).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from faultlab.backends.base import Backend
from faultlab.backends.write_lock import WriteLock

__all__ = ["write_lock"]


WAIT_S = 2  # a lock the app itself holds (a write it never committed) is not waited for longer


@contextmanager
def write_lock(backend: Backend, seconds: float) -> Iterator[bool]:
    """Held for ``seconds`` (a timer releases it, even while the caller is blocked) or until the block ends;
    yields whether it could be taken."""
    lock = WriteLock()
    try:
        yield lock.hold(backend, seconds, wait_s=WAIT_S) is not None
    finally:
        lock.release()
