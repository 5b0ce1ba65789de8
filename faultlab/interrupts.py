"""Clean-up that a second Ctrl+C cannot cut short.

A person who presses Ctrl+C twice wants the lab to stop, not to leave a server, a temp dir or a database
behind. Inside ``deferred()`` the signals that would interrupt (SIGINT, SIGTERM, SIGHUP) are only noted;
the block finishes, and the caller learns that an interrupt came (``pending``). Outside the main thread,
where Python cannot set signal handlers, the block just runs.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

__all__ = ["INTERRUPTING", "Pending", "deferred", "hold", "lost_terminal", "raise_interrupt"]

INTERRUPTING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP (the terminal closed) end a run as Ctrl+C does: with clean-up and a report."""
    if signum == signal.SIGHUP:
        _silence_terminal()
    raise KeyboardInterrupt


def lost_terminal(exc: OSError) -> KeyboardInterrupt | None:
    """A write to a closed terminal fails (EIO, EPIPE) before the kernel's SIGHUP arrives: the same hang-up,
    so it ends the run the same way (with clean-up and a report), not as a lost error."""
    if exc.errno not in (errno.EIO, errno.EPIPE):
        return None
    _silence_terminal()
    return KeyboardInterrupt()


def _silence_terminal() -> None:
    """After a hang-up, writing to the terminal fails (EIO): send what is left to /dev/null instead, so that
    clean-up and the report are not cut short by a progress line that cannot be printed."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            if os.isatty(fd):
                os.dup2(devnull, fd)
    finally:
        os.close(devnull)


@dataclass
class Pending:
    signals: int = 0

    def __bool__(self) -> bool:
        return self.signals > 0


def _noting(pending: Pending) -> Callable[[int, FrameType | None], None]:
    def note(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            _silence_terminal()
        pending.signals += 1

    return note


@contextmanager
def deferred() -> Iterator[Pending]:
    pending = Pending()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    note = _noting(pending)
    previous = {sig: signal.signal(sig, note) for sig in INTERRUPTING}
    try:
        yield pending
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def hold() -> Pending:
    """Once a run was interrupted and its clean-up is done, the lab only reports and exits: from here on the
    signals are noted, not raised, so a second Ctrl+C (however late) cannot cut the verdict and the report's
    path out of what is printed. Not undone: the process ends with exit code 130 anyway."""
    pending = Pending()
    if threading.current_thread() is threading.main_thread():
        note = _noting(pending)
        for sig in INTERRUPTING:
            signal.signal(sig, note)
    return pending
