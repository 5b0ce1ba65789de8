"""However the lab ends, nothing it started outlives it for long, and the next run sweeps what is left.

Each test ends a real run_lab.py for real: ``kill -9``, a hang-up of its terminal (a pty closed), Ctrl+C
twice in quick succession, a signal during its imports.
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem
from faultlab.server import forkserver
from tests.lab_cli import RUN_LAB, STEP_LINE, Lines, await_handlers, run_lab, start_lab
from tests.servers import lab_processes

SERVERS_GONE_S = 10.0  # the watchdog's SIGTERM, then SIGKILL after 3 s: well within this
POSTGRES_URL = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _await_servers(pid: int, deadline_s: float = 30.0) -> list[psutil.Process]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if found := lab_processes(pid):
            return found
        time.sleep(0.02)
    raise AssertionError("run_lab.py never started a server")


def _into_the_steps(lab: subprocess.Popen[str]) -> Lines:
    """Once the fault run's first step is judged: the run is under way, its servers serving."""
    assert lab.stdout is not None
    lines = Lines(lab.stdout)
    lines.wait_for(STEP_LINE)
    return lines


def _assert_gone(servers: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(servers, timeout=SERVERS_GONE_S)
    for process in alive:
        process.kill()
    assert not alive, f"servers outlived the lab by more than {SERVERS_GONE_S:.0f} s: {alive}"


def test_kill_9_of_the_lab_stops_its_servers_and_the_next_run_sweeps_its_temp_dir(tmp_path: Path) -> None:
    # A temp root of its own: another lab running meanwhile (a second suite) would sweep the dir first.
    private = {"TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    lab = start_lab("missing-yield", "--out", tmp_path / "out", cwd=tmp_path, env=private)
    servers = _await_servers(lab.pid)
    run_dir = Path(servers[0].cwd()).parent
    lines = _into_the_steps(lab)
    family = lab_processes(lab.pid, "faultlab.inside.serve")
    lab.kill()
    lab.wait()
    lines.text()
    _assert_gone(family)
    assert run_dir.is_dir(), "nothing could clean up after kill -9: the next run must"

    after = run_lab("stale-schema", "--out", tmp_path / "out2", cwd=tmp_path, env=private)
    assert after.returncode == 0, after.stderr
    assert "removed what an earlier lab left behind when it died:" in after.stderr and "temp dir" in after.stderr
    assert run_dir.parent == tmp_path / "tmp" and not run_dir.exists()


def test_a_run_that_ends_takes_its_fork_server_with_it(tmp_path: Path) -> None:
    """relative-db-path restarts its servers: the fork server forks each of them, and goes as the lab exits."""
    lab = start_lab("relative-db-path", "--out", tmp_path / "out", cwd=tmp_path)
    assert lab.stdout is not None
    lines = Lines(lab.stdout)  # read, so that the lab never waits on a full pipe
    _await_servers(lab.pid)
    family: dict[int, psutil.Process] = {}
    fork_servers = set()
    while lab.poll() is None:
        for process in lab_processes(lab.pid, "faultlab.inside.serve"):
            family[process.pid] = process
            with contextlib.suppress(psutil.NoSuchProcess):
                if "--fork-server" in process.cmdline() and process.ppid() == lab.pid:  # not a child just forked
                    fork_servers.add(process.pid)
        time.sleep(0.05)
    output = lines.text()
    assert lab.returncode == 0, output
    assert fork_servers, "the lab started no fork server"
    assert len(fork_servers) == 1 and len(family) >= 5, "one fork server, relative-db-path's runs and restarts"
    _, alive = psutil.wait_procs(list(family.values()), timeout=1.0)  # gone as the lab exits, not by the lifeline
    assert not alive, alive


def test_kill_9_on_postgresql_leaves_nothing_once_the_next_run_has_swept(tmp_path: Path) -> None:
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(f"{problem}; set FAULTLAB_POSTGRES_URL")
    import psycopg

    # Cold starts, whose /proc environ is the one they run with (a forked server shows the fork server's start-up
    # environment there; faultlab.server.forkserver).
    lab = start_lab(
        "missing-yield",
        "--sequential",
        "--db",
        POSTGRES_URL,
        "--out",
        tmp_path / "out",
        cwd=tmp_path,
        env={forkserver.DISABLE_ENV: "1"},
    )
    servers = _await_servers(lab.pid)
    database = servers[0].environ()["DATABASE_URL"].rsplit("/", 1)[1]  # the run's own database (and role)
    lines = _into_the_steps(lab)
    lab.kill()
    lab.wait()
    lines.text()
    _assert_gone(servers)
    with psycopg.connect(POSTGRES_URL) as connection:
        left = connection.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (database,)).fetchone()
    assert left == (1,), "the killed lab's database is still there until a later run sweeps it"

    after = run_lab("stale-connection", "--db", POSTGRES_URL, "--out", tmp_path / "out2", cwd=tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    # This run sweeps them, unless another lab on the same server (a second test worker) got there first:
    # either way they must be gone now.
    if "removed what an earlier lab left behind" in after.stderr:
        assert "database" in after.stderr and "role" in after.stderr, after.stderr
    with psycopg.connect(POSTGRES_URL) as connection:
        databases = connection.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (database,)).fetchone()
        roles = connection.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (database,)).fetchone()
    assert (databases, roles) == ((0,), (0,))


def test_closing_the_terminal_ends_the_run_cleanly(tmp_path: Path) -> None:
    """A real hang-up: run_lab.py in a pseudo-terminal of its own, whose other end is then closed."""
    out = tmp_path / "out"
    pid, terminal = pty.fork()
    if pid == 0:  # the child: run_lab.py with the pty as its controlling terminal
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, str(RUN_LAB), "missing-yield", "--out", str(out)], os.environ)
    output = bytearray()

    def drain() -> None:
        try:
            while chunk := os.read(terminal, 4096):
                output.extend(chunk)
        except OSError:
            pass  # the terminal was closed

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        servers = _await_servers(pid)
        run_dir = Path(servers[0].cwd()).parent
        steps = time.monotonic() + 60
        while not any(STEP_LINE.match(line) for line in output.decode(errors="replace").splitlines()):
            assert time.monotonic() < steps, f"no step judged within 60 s:\n{output.decode(errors='replace')}"
            time.sleep(0.02)  # until the fault run's first step is judged: the run is under way
    finally:
        os.close(terminal)  # the terminal goes away: the kernel sends SIGHUP
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError(f"run_lab.py did not end after a hang-up; it printed:\n{output.decode(errors='replace')}")
    assert os.waitstatus_to_exitcode(status) == 130
    _assert_gone(servers)
    assert not run_dir.exists(), "a hang-up is handled like SIGTERM: the temp dir is removed"
    assert "interrupted" in (out / "missing-yield" / "journal.json").read_text()


def test_ctrl_c_twice_during_start_up_still_cleans_up_and_says_where_the_report_is(tmp_path: Path) -> None:
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        lab = start_lab("stale-schema", "--out", out, cwd=tmp_path, stderr=subprocess.PIPE)
        servers = _await_servers(lab.pid)  # spawned: the server is starting up
        run_dir = Path(servers[0].cwd()).parent
        time.sleep(0.05 * attempt)
        lab.send_signal(signal.SIGINT)
        time.sleep(0.05)
        lab.send_signal(signal.SIGINT)
        stdout, stderr = lab.communicate(timeout=60)
        assert lab.returncode == 130, stderr
        assert "Traceback" not in stderr, stderr
        _assert_gone(servers)
        assert not run_dir.exists(), f"attempt {attempt}: temp dir left behind"
        assert f"report: {out / 'stale-schema' / 'report.md'}" in stdout, stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_imports_ends_in_one_line(tmp_path: Path, sig: signal.Signals) -> None:
    lab = subprocess.Popen(
        [sys.executable, str(RUN_LAB), "--list"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # run_lab.py's first lines catch SIGTERM and SIGHUP, then it imports the lab (half a second): signal it then,
    # not while the interpreter is still starting (no program of its own has run yet; Python's own traceback).
    await_handlers(lab.pid, signal.SIGTERM, signal.SIGHUP)
    lab.send_signal(sig)
    _, stderr = lab.communicate(timeout=30)
    if lab.returncode == 0:
        pytest.skip("the listing finished before the signal came (a fast machine)")
    assert lab.returncode == 130 and stderr.strip() == "interrupted", (lab.returncode, stderr)
