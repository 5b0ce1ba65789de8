"""A PgBouncer of the run's own between the app and its database (``[setup] pooler = "pgbouncer"``), in
transaction pooling mode: each transaction of a client may run on another server connection, which is what
breaks a client that keeps state on its connection between transactions (asyncpg's prepared statements).

Debian's ``pgbouncer`` binary, started in the foreground on a free port of 127.0.0.1 with an ini of its own
in the run's temp dir; it forwards every database to the server of the run's database URL, and knows one
user, the run's role, whose password it keeps in its ``auth_file`` (so it can log in to PostgreSQL for the
app; clients must give it too). The system's pgbouncer service and ``/etc/pgbouncer`` are never read or
touched. Like PostgreSQL, PgBouncer refuses to run as root (``faultlab.backends.run_as``).

However the lab ends, PgBouncer goes: ``close()``, or the watcher on the lab's lifeline (``pooler_watch``),
or the next lab's sweep (``sweep.sweep_temp_dirs``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil

from faultlab.backends.pooler_watch import INI, PID_FILE, stop_pooler
from faultlab.backends.run_as import as_user, open_run_dir, root_problem, server_user
from faultlab.errors import BackendError
from faultlab.server.lifeline import spawn_watcher
from faultlab.server.process import free_loopback_port, log_tail
from faultlab.server.process import stop as stop_process

__all__ = ["INSTALL_HINT", "PgBouncer", "find_pgbouncer", "pooler_problem"]

INSTALL_HINT = (
    "install PgBouncer: Debian/Ubuntu `apt-get install pgbouncer`, Fedora `dnf install pgbouncer`, macOS "
    "`brew install pgbouncer`; or put its directory on PATH"
)
READY_DEADLINE_S = 10.0
POOL_SIZE = 20  # server connections per database and user: more than any experiment's app pool asks at once


def find_pgbouncer() -> Path | None:
    """The ``pgbouncer`` binary: on PATH, else where Debian puts it (``/usr/sbin``, not on a user's PATH)."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def pooler_problem() -> str | None:
    """Why the lab cannot start a PgBouncer of its own here, with what to do; None when it can."""
    if find_pgbouncer() is None:
        return f"no pgbouncer binary found (on PATH or in /usr/sbin); {INSTALL_HINT}"
    return root_problem("PgBouncer")


def _quoted(text: str) -> str:
    """As ``auth_file`` quotes a name or a password: in double quotes, a double quote doubled."""
    return '"' + text.replace('"', '""') + '"'


class PgBouncer:
    """``pooler = PgBouncer(run_dir)``; ``url = pooler.start(database_url)`` gives the URL that reaches the same
    database through it; ``close()`` stops it (safe to call twice, and when it never started)."""

    def __init__(self, run_dir: Path) -> None:
        self.binary = find_pgbouncer() or Path("pgbouncer")
        self.root = run_dir / "pgbouncer"
        self.log_path = self.root.parent / "pgbouncer.log"  # beside it: the report's logs stay after it goes
        self.port = 0
        self._run_dir = run_dir
        self._user: pwd.struct_passwd | None = None  # whom it runs as: resolved in start(), once it can be
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher: subprocess.Popen[bytes] | None = None

    def start(self, url: str) -> str:
        """Start in front of the server of ``url`` (as its user, with its password); the same URL through it."""
        from sqlalchemy import make_url

        if problem := pooler_problem():
            raise BackendError(problem)
        self._user = server_user()  # a root lab's PgBouncer runs as the server's user; pooler_problem checked it
        target = make_url(url)
        if not target.username or target.password is None:
            raise BackendError("PgBouncer needs the run's role and password in its database URL")
        try:
            self._prepare(target.username, str(target.password))
            self._watch()
            for attempt in range(3):  # a free port can be taken between the probe and the bind: pick another
                self.port = free_loopback_port()
                self._write_ini(target.host or "127.0.0.1", target.port or 5432)
                if self._run():
                    return target.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
                if attempt == 2 or "Address already in use" not in log_tail(self.log_path, 5):
                    raise BackendError(f"PgBouncer did not start:\n{log_tail(self.log_path, 8)}")
        except BaseException:
            self.close()
            raise
        raise AssertionError("unreachable")

    def _prepare(self, role: str, password: str) -> None:
        if self._user is not None:
            open_run_dir(self._run_dir.parent, self._user)  # the experiment's dir, then the run's, below it
            open_run_dir(self._run_dir, self._user)
        self.root.mkdir(mode=0o700)
        users = self.root / "users.txt"
        users.write_text(f"{_quoted(role)} {_quoted(password)}\n", encoding="utf-8")
        users.chmod(0o600)
        if self._user is not None:
            for path in (self.root, users):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _write_ini(self, host: str, port: int) -> None:
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": "",  # TCP only: no socket file to place or to clean up
            "auth_type": "scram-sha-256",
            "auth_file": self.root / "users.txt",
            "pool_mode": "transaction",
            "default_pool_size": POOL_SIZE,
            "max_client_conn": 200,
            "pidfile": self.root / PID_FILE,
        }
        ini = self.root / INI
        ini.write_text(
            f"[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items()),
            encoding="utf-8",
        )
        if self._user is not None:
            os.chown(ini, self._user.pw_uid, self._user.pw_gid)

    def _watch(self) -> None:
        self._watcher = spawn_watcher(
            "faultlab.backends.pooler_watch",
            str(self.root),
            cwd=self._run_dir,
            log_path=self._run_dir / "pgbouncer-watch.log",
        )

    def _run(self) -> bool:
        """Start PgBouncer and wait until it accepts connections; False if it exited (the log says why)."""
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [str(self.binary), str(self.root / INI)],
                cwd=self.root,
                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl+C at the terminal reaches only the lab, which then stops it
                **as_user(self._user),
            )
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                # Something answered: PgBouncer, unless another process took the port first (then PgBouncer
                # exits on "Address already in use", and the caller picks another port).
                time.sleep(0.05)
                return self._process.poll() is None and self._listens()
            except OSError:
                time.sleep(0.02)
        raise BackendError(
            f"PgBouncer did not listen on 127.0.0.1:{self.port} within {READY_DEADLINE_S:g} s:\n"
            f"{log_tail(self.log_path, 8)}"
        )

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _listens(self) -> bool:
        """Whether this PgBouncer (not another process that took the port first) listens on ``self.port``."""
        if self._process is None:
            return False
        try:
            listening = psutil.Process(self._process.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port for c in listening)

    def close(self) -> None:
        """Stop PgBouncer (every client's connection closes), end the watcher, delete its dir; safe twice."""
        if self._process is not None:
            stop_process(self._process, grace=3.0)
            self._process = None
        stop_pooler(self.root)  # one the lab lost track of (started, then the start was interrupted)
        if self._watcher is not None:
            stop_process(self._watcher, grace=1.0)
            self._watcher = None
        shutil.rmtree(self.root, ignore_errors=True)
