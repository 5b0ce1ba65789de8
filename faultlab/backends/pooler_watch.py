"""Stop a PgBouncer of the lab's own when the lab is gone, and what the sweep uses to stop one that a dead lab
left running.

``python -m faultlab.backends.pooler_watch ROOT``: blocks on the lab's lifeline (``faultlab.server.lifeline``,
its descriptor in ``FAULTLAB_LIFELINE``). PgBouncer runs in a session of its own (a Ctrl+C at the terminal
must reach only the lab) and cannot watch a pipe itself: when the read returns end-of-file (the lab ended,
however it ended), this stops it and removes its directory. A normal run stops PgBouncer itself, then this.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
from pathlib import Path

import psutil

from faultlab.server.lifeline import wait_for_lab_end

__all__ = ["INI", "PID_FILE", "pooler_processes", "stop_pooler"]

GRACE_S = 3.0
INI = "pgbouncer.ini"
PID_FILE = "pgbouncer.pid"  # written by PgBouncer itself (its ``pidfile`` setting)


def _is_ours(process: psutil.Process, ini: str) -> bool:
    """A live PgBouncer started on this very ini (a later process that got the same pid is never taken)."""
    with contextlib.suppress(psutil.Error):
        return ini in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE
    return False


def pooler_processes(root: Path) -> list[psutil.Process]:
    """The PgBouncer running on ``ROOT/pgbouncer.ini``: found by its pid file, else by its command line (it
    may have been killed before it wrote the file, or the file removed); empty when none runs."""
    ini = str(root / INI)
    with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
        process = psutil.Process(int((root / PID_FILE).read_text().split()[0]))
        if _is_ours(process, ini):
            return [process]
    return [process for process in psutil.process_iter() if _is_ours(process, ini)]


def stop_pooler(root: Path, grace_s: float = GRACE_S) -> bool:
    """SIGTERM (PgBouncer's immediate shutdown), SIGKILL after ``grace_s``. True if one was running."""
    processes = pooler_processes(root)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    return bool(processes)


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    wait_for_lab_end()
    stop_pooler(root)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
