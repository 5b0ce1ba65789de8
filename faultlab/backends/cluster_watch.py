"""Stop a PostgreSQL cluster of the lab's own when the lab is gone, and what the sweep uses to stop one that a
dead lab left running.

``python -m faultlab.backends.cluster_watch DATA_DIR``: blocks on the lab's lifeline (``faultlab.server.lifeline``,
its descriptor in ``FAULTLAB_LIFELINE``). The postmaster is a daemon (``pg_ctl`` detaches it), so nothing else
would end it: when the read returns end-of-file (the lab ended, however it ended), this stops the cluster and
removes its data directory. A normal run stops the cluster itself and then ends this watcher.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
from pathlib import Path

import psutil

from faultlab.server.lifeline import wait_for_lab_end

__all__ = ["cluster_processes", "postmaster", "stop_cluster"]

GRACE_S = 3.0


def postmaster(data_dir: Path) -> psutil.Process | None:
    """The running postmaster of ``data_dir`` (from its ``postmaster.pid``), checked by its command line, so a
    later process that got the same pid is never taken for it."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        process = psutil.Process(pid)
        if str(data_dir) in " ".join(process.cmdline()) and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return None


def cluster_processes(data_dir: Path) -> list[psutil.Process]:
    """The postmaster and its children (backends, checkpointer, ...); empty when the cluster is down."""
    main = postmaster(data_dir)
    if main is None:
        return []
    with contextlib.suppress(psutil.Error):
        return [main, *main.children(recursive=True)]
    return [main]


def stop_cluster(data_dir: Path, grace_s: float = GRACE_S) -> bool:
    """Immediate shutdown (SIGQUIT), resumed first if paused; SIGKILL what is left after ``grace_s``. True if
    a postmaster was running."""
    processes = cluster_processes(data_dir)
    if not processes:
        return False
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGCONT)  # a stopped process would hold its SIGQUIT until resumed
    with contextlib.suppress(psutil.Error):
        processes[0].send_signal(signal.SIGQUIT)
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    return True


def main(argv: list[str]) -> int:
    data_dir = Path(argv[0])
    wait_for_lab_end()
    stop_cluster(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
