"""A PostgreSQL server of the run's own (faultlab.backends.cluster): real initdb and pg_ctl, real signals. What
each action does to a client's connection, and that no cluster outlives the lab however it ends."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from faultlab.backends import sweep
from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem
from faultlab.backends.cluster import OwnCluster, cluster_problem
from faultlab.backends.cluster_watch import cluster_processes
from faultlab.owner import Owner, me
from tests.lab_cli import RUN_LAB, STEP_LINE, Lines, run_lab, start_lab

pytestmark = pytest.mark.skipif(bool(cluster_problem()), reason=cluster_problem() or "")
POSTGRES_URL = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)
GONE_S = 10.0


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """Under the system temp dir, not pytest's private one: as root, the postgres user must traverse its parents."""
    made = Path(tempfile.mkdtemp(prefix="faultlab-test-cluster-"))
    made.chmod(0o755)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def _user_server_started() -> object:
    """The user's own server's start time (None when there is none): it must never change."""
    if postgres_problem(POSTGRES_URL):
        return None
    import psycopg

    with psycopg.connect(POSTGRES_URL) as connection:
        return connection.execute("SELECT pg_postmaster_start_time()").fetchone()


def _error_on(connection: object) -> str:
    import psycopg

    try:
        connection.execute("SELECT 1")  # type: ignore[attr-defined]
    except psycopg.Error as exc:
        return str(exc)
    return ""


def test_restart_kill_and_pause_as_a_client_sees_them(run_dir: Path) -> None:
    import psycopg

    before = _user_server_started()
    with OwnCluster(run_dir) as cluster:
        assert cluster.port != 5432 and cluster.running()
        old = psycopg.connect(cluster.admin_url, autocommit=True)
        cluster.restart()
        assert "terminating connection due to administrator command" in _error_on(old)

        old = psycopg.connect(cluster.admin_url, autocommit=True)
        processes = cluster_processes(cluster.data_dir)
        cluster.kill()
        assert not any(p.is_running() for p in processes) and not cluster.running()
        assert _error_on(old), "a connection to a killed server must fail"
        cluster.ensure_running()  # crash recovery

        live = psycopg.connect(cluster.admin_url, autocommit=True)
        cluster.pause()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            psycopg.connect(cluster.admin_url, connect_timeout=1)  # accepted by the kernel, never answered
        assert time.monotonic() - started >= 0.9
        cluster.resume()
        assert live.execute("SELECT 1").fetchone() == (1,), "a paused server goes on where it stopped"
        live.close()
        processes = cluster_processes(cluster.data_dir)
    _, alive = psutil.wait_procs(processes, timeout=GONE_S)
    assert not alive and not (run_dir / "cluster").exists(), alive
    assert _user_server_started() == before, "the user's own server was restarted"


def test_the_sweep_stops_a_dead_labs_cluster_and_removes_its_dir(run_dir: Path) -> None:
    """Its watcher died with it (the whole family killed at once): the next lab's sweep stops the cluster."""
    root = run_dir / "tmp"
    root.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = Owner(int(dead.stdout), time.time(), me().host).to_json()
    abandoned = root / f"{sweep.PREFIX}database-restart-x"
    abandoned.mkdir()
    (abandoned / sweep.OWNER_FILE).write_text(record)
    cluster = OwnCluster(abandoned)
    try:
        cluster.create()
        assert cluster._watcher is not None
        cluster._watcher.kill()  # as kill -9 of the lab's process group would
        cluster._watcher.wait()
        processes = cluster_processes(cluster.data_dir)
        assert processes, "the cluster should still run without its watcher"
        assert sweep.sweep_temp_dirs(root) == [str(abandoned)]
        _, alive = psutil.wait_procs(processes, timeout=GONE_S)
        assert not alive and not abandoned.exists(), alive
    finally:
        cluster.remove()


def _cluster_of(lab_pid: int, under: Path, deadline_s: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for data_dir in under.glob(f"{sweep.PREFIX}*/cluster/data"):
            if found := cluster_processes(data_dir):
                return found
        time.sleep(0.05)
    raise AssertionError(f"the lab {lab_pid} never started a cluster under {under}")


def test_kill_9_of_the_lab_takes_its_cluster_and_the_next_run_sweeps_its_dir(run_dir: Path) -> None:
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(f"{problem}; --db postgresql needs a server (set FAULTLAB_POSTGRES_URL)")
    private = {"TMPDIR": str(run_dir)}
    lab = start_lab("database-restart", "--db", "postgresql", "--out", run_dir / "out", cwd=run_dir, env=private)
    assert lab.stdout is not None
    lines = Lines(lab.stdout)
    cluster = _cluster_of(lab.pid, run_dir)
    (lab_dir,) = run_dir.glob(f"{sweep.PREFIX}*")
    lines.wait_for(STEP_LINE)
    os.kill(lab.pid, signal.SIGKILL)
    lab.wait()
    lines.text()
    _, alive = psutil.wait_procs(cluster, timeout=GONE_S)
    for process in alive:
        process.kill()
    assert not alive, f"the cluster outlived the lab by more than {GONE_S:g} s: {alive}"
    deadline = time.monotonic() + GONE_S
    while (lab_dir / "cluster" / "data").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (lab_dir / "cluster" / "data").exists(), "the watcher removes the cluster's data"

    after = run_lab("stale-schema", "--out", run_dir / "out2", cwd=run_dir, env=private)
    assert after.returncode == 0, after.stderr
    assert not lab_dir.exists(), after.stderr


def test_kill_9_of_the_doctor_takes_its_own_cluster_and_leaves_the_users_server_alone(run_dir: Path) -> None:
    """``doctor --db own-cluster``: its server is owned as an experiment's is, so a doctor killed mid-checkup
    leaves no PostgreSQL behind (the watcher on its lifeline stops it); the user's server is not restarted."""
    from faultlab.variants import PROJECT_ROOT

    before = _user_server_started()
    doctor = subprocess.Popen(
        [sys.executable, str(RUN_LAB), "doctor", "app.main:app", "--app-dir", str(PROJECT_ROOT), "--db", "own-cluster",
         "--out", str(run_dir / "out")],
        cwd=run_dir,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "TMPDIR": str(run_dir)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert doctor.stdout is not None
    lines = Lines(doctor.stdout)
    cluster = _cluster_of(doctor.pid, run_dir)
    lines.wait_for("GET /todos")  # the app is served on it, and the checkup under way
    os.kill(doctor.pid, signal.SIGKILL)
    doctor.wait()
    lines.text()
    _, alive = psutil.wait_procs(cluster, timeout=GONE_S)
    for process in alive:
        process.kill()
    assert not alive, f"the doctor's cluster outlived it by more than {GONE_S:g} s: {alive}"
    assert _user_server_started() == before, "the user's own server was restarted"
