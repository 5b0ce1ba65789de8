"""A PostgreSQL server of the run's own, for experiments that stop, restart, kill or pause the database: the
user's own server is never touched. A throwaway cluster (``initdb``, then ``pg_ctl``) on a free loopback port,
in the run's temp dir, tuned for speed (no fsync: nothing in it needs to survive a power cut).

PostgreSQL refuses to run as root: a lab running as root runs the cluster as the ``postgres`` user
(``faultlab.backends.run_as``). However the lab ends, the cluster
goes: the lab removes it, or a watcher on the lab's lifeline does (``cluster_watch``), or the next lab's
sweep (``sweep.sweep_temp_dirs``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from faultlab.backends.cluster_watch import cluster_processes, postmaster, stop_cluster
from faultlab.backends.run_as import as_user, open_run_dir, root_problem, server_user
from faultlab.errors import BackendError
from faultlab.server.lifeline import spawn_watcher
from faultlab.server.process import free_loopback_port
from faultlab.server.process import stop as stop_process

__all__ = ["INSTALL_HINT", "OwnCluster", "cluster_problem", "find_binaries"]

INSTALL_HINT = (
    "install PostgreSQL's server binaries (initdb, pg_ctl, postgres): Debian/Ubuntu `apt-get install postgresql`, "
    "Fedora `dnf install postgresql-server`, macOS `brew install postgresql@15`; or put their directory on PATH"
)
GONE_DEADLINE_S = 10.0
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",  # TCP only: no socket file to place or to clean up
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "60",
}


def find_binaries() -> Path | None:
    """The directory with ``initdb``, ``pg_ctl`` and ``postgres``: from PATH, else the newest Debian-style
    ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def cluster_problem() -> str | None:
    """Why the lab cannot start a cluster of its own here, with what to do; None when it can."""
    if find_binaries() is None:
        return f"no PostgreSQL server binaries found (on PATH or in /usr/lib/postgresql/*/bin); {INSTALL_HINT}"
    return root_problem("PostgreSQL")


class OwnCluster:
    """``with OwnCluster(run_dir) as cluster:`` a running cluster; ``admin_url`` reaches it as its superuser
    (with a random password: the password never leaves this object and the run's own processes)."""

    def __init__(self, run_dir: Path, *, max_connections: int | None = None) -> None:
        problem = cluster_problem()
        if problem:
            raise BackendError(problem)
        self.bin_dir = find_binaries() or Path()
        self.root = run_dir / "cluster"
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"  # the server's own
        self._tools_log = self.root / "tools.log"  # initdb's and pg_ctl's
        self.port = 0
        # The server's whole budget of sessions (superusers' reserved 3 included), when an experiment sets it.
        self.settings = {**SETTINGS, **({"max_connections": str(max_connections)} if max_connections else {})}
        self._password = secrets.token_urlsafe(18)
        self._user = server_user()
        self._run_dir = run_dir
        self._watcher: subprocess.Popen[bytes] | None = None
        self.paused = False
        # Held by each read of the lab's and by pause(): a read checks and runs with the server running. A pause
        # between the check and the read would hang the read for good (nothing bounds a query to a stopped server).
        self._reads = threading.RLock()
        self.generation = 0  # how many times the server was started: a connection older than it is dead

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres:{self._password}@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> OwnCluster:
        try:
            self.create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- as the server's user -----------------------------------------------------------------------------
    def _as_server_user(self, *argv: str, timeout_s: float = 60.0) -> None:
        """A PostgreSQL tool, as the user the cluster runs as; its output goes to the cluster's log."""
        user = self._user
        with open(self._tools_log, "ab") as log:
            done = subprocess.run(
                [str(self.bin_dir / argv[0]), *argv[1:]],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"},
                check=False,
                **as_user(user),
            )
        if done.returncode != 0:
            tail = "\n".join(self._logs().splitlines()[-8:])
            raise BackendError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} failed (exit {done.returncode}):\n{tail}")

    def _logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self._tools_log, self.log_path) if p.exists())

    def _prepare_dirs(self) -> None:
        if self._user is not None:
            open_run_dir(self._run_dir, self._user)
        self.root.mkdir()
        self.log_path.touch()
        if self._user is not None:
            os.chown(self.log_path, self._user.pw_uid, self._user.pw_gid)
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self.root.chmod(0o700)

    def create(self) -> None:
        """initdb, then start; the watcher on the lab's lifeline before the first start."""
        self._prepare_dirs()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self._password + "\n", encoding="utf-8")
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        pwfile.chmod(0o600)
        try:
            self._as_server_user(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                "--no-sync", "--no-instructions",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        self._watch()
        for attempt in range(3):  # a free port can be taken between the probe and the bind: pick another
            self.port = free_loopback_port()
            with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write("".join(f"{k} = {v}\n" for k, v in {**self.settings, "port": str(self.port)}.items()))
            try:
                self.start()
                return
            except BackendError:
                if attempt == 2 or "already in use" not in self._logs():
                    raise

    def _watch(self) -> None:
        self._watcher = spawn_watcher(
            "faultlab.backends.cluster_watch", str(self.data_dir), cwd=self.root, log_path=self.root / "watch.log"
        )

    # -- the actions ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._as_server_user("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "30")
        self.generation += 1
        self.paused = False

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop``: ``fast`` ends every session (what a restart does), ``immediate`` skips the checkpoint."""
        self.resume()
        self._as_server_user("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30")

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def kill(self) -> int:
        """SIGKILL to the postmaster, as the OOM killer would; waits until its children have noticed and exited
        (they share its memory: a new postmaster could not start before). The postmaster's pid."""
        processes = cluster_processes(self.data_dir)
        if not processes:
            raise BackendError("the run's PostgreSQL server is not running")
        self.resume()
        processes[0].kill()
        _, alive = psutil.wait_procs(processes, timeout=GONE_DEADLINE_S)
        if alive:
            raise BackendError(f"{len(alive)} PostgreSQL processes still running {GONE_DEADLINE_S:g} s after SIGKILL")
        pid: int = processes[0].pid
        return pid

    def pause(self) -> int:
        """SIGSTOP to every process of the server: connections stay open, nothing answers. How many."""
        with self._reads:  # waits for a read of the lab's in flight; later ones see ``paused``
            processes = cluster_processes(self.data_dir)
            if not processes:
                raise BackendError("the run's PostgreSQL server is not running")
            for process in processes:
                process.send_signal(signal.SIGSTOP)
            self.paused = True
            return len(processes)

    def resume(self) -> None:
        if self.paused:
            for process in cluster_processes(self.data_dir):
                with contextlib.suppress(psutil.Error):
                    process.send_signal(signal.SIGCONT)
            self.paused = False

    @contextlib.contextmanager
    def readable(self) -> Iterator[str | None]:
        """``with cluster.readable() as why:`` why the lab must not read now (None: read, no pause can start)."""
        with self._reads:
            yield self.unavailable()

    def running(self) -> bool:
        return postmaster(self.data_dir) is not None

    def unavailable(self) -> str | None:
        """Why the lab's own reads cannot reach the server now (they would fail, or hang); None when they can."""
        if self.paused:
            return "the run's PostgreSQL server is paused (SIGSTOP)"
        if not self.running():
            return "the run's PostgreSQL server is down"
        return None

    def ensure_running(self) -> None:
        """Back to a server that answers (a run ends with it paused or killed): the next run starts clean."""
        self.resume()
        if not self.running():
            self.start()

    def remove(self) -> None:
        """Stop the server (immediately: it is thrown away), end the watcher, delete the data; safe to call twice."""
        stop_cluster(self.data_dir)
        if self._watcher is not None:
            stop_process(self._watcher, grace=1.0)
            self._watcher = None
        shutil.rmtree(self.root, ignore_errors=True)
