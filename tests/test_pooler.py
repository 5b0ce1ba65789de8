"""A PgBouncer of the run's own (faultlab.backends.pooler): the real binary, in transaction mode, in front of a
throwaway database of the shared server; and that no PgBouncer outlives the lab however it ends."""

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

from faultlab.backends import pooler as pooler_module
from faultlab.backends import sweep
from faultlab.backends.base import DEFAULT_POSTGRES_URL, PostgresBackend, postgres_problem
from faultlab.backends.pooler import PgBouncer, pooler_problem
from faultlab.backends.pooler_watch import pooler_processes
from faultlab.model.catalogue import load_catalogue
from faultlab.model.setup import machine_problem
from faultlab.owner import Owner, me
from faultlab.plugins.registry import Registry
from tests.lab_cli import STEP_LINE, Lines, run_lab, start_lab

needs_pgbouncer = pytest.mark.skipif(bool(pooler_problem()), reason=pooler_problem() or "")
POSTGRES_URL = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)
GONE_S = 10.0


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """Under the system temp dir, not pytest's private one: as root, the postgres user must traverse its parents."""
    made = Path(tempfile.mkdtemp(prefix="faultlab-test-pooler-"))
    made.chmod(0o755)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def _needs_server() -> None:
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(f"{problem}; set FAULTLAB_POSTGRES_URL to a server where the lab may create databases")


@needs_pgbouncer
def test_transaction_pooling_lends_a_client_another_server_session_per_transaction(run_dir: Path) -> None:
    import psycopg
    from sqlalchemy import make_url

    _needs_server()
    backend = PostgresBackend(POSTGRES_URL, label="pooler-test")
    backend.create()
    pooler = PgBouncer(run_dir / "fault")
    (run_dir / "fault").mkdir()
    try:
        through = make_url(pooler.start(backend.url)).set(drivername="postgresql")
        assert pooler.port not in (0, backend.port)
        (process,) = pooler_processes(pooler.root)
        if os.geteuid() == 0:
            assert process.username() == "postgres", "PgBouncer refuses root: it runs as the postgres user"
        url = through.render_as_string(hide_password=False)
        # prepare_threshold=None: psycopg's own prepared statements would meet the very fault under test
        with (
            psycopg.connect(url, prepare_threshold=None) as holder,
            psycopg.connect(url, autocommit=True, prepare_threshold=None) as other,
        ):
            held = holder.execute("SELECT pg_backend_pid()").fetchone()  # a transaction open: its session is lent
            first = other.execute("SELECT pg_backend_pid()").fetchone()
            holder.commit()  # its session goes back to PgBouncer, the most recently used (LIFO)
            second = other.execute("SELECT pg_backend_pid()").fetchone()
        assert first != held and second == held, (held, first, second)
    finally:
        pooler.close()
        backend.drop()
    assert not process.is_running() and not pooler.root.exists()


@needs_pgbouncer
def test_without_credentials_in_the_url_it_says_so(run_dir: Path) -> None:
    with pytest.raises(Exception, match="role and password"):
        PgBouncer(run_dir).start("postgresql://127.0.0.1:5432/db")
    assert not (run_dir / "pgbouncer").exists()


@needs_pgbouncer
def test_the_sweep_stops_a_dead_labs_pgbouncer_and_removes_its_dir(run_dir: Path) -> None:
    """Its watcher died with it (the whole family killed at once): the next lab's sweep stops PgBouncer."""
    root = run_dir / "tmp"
    root.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = root / f"{sweep.PREFIX}pgbouncer-prepared-statements-x"
    (abandoned / "fault").mkdir(parents=True)
    (abandoned / sweep.OWNER_FILE).write_text(Owner(int(dead.stdout), time.time(), me().host).to_json())
    pooler = PgBouncer(abandoned / "fault")
    try:
        pooler.start("postgresql://role:secret@127.0.0.1:1/db")  # it connects to the server only when asked
        assert pooler._watcher is not None
        pooler._watcher.kill()  # as kill -9 of the lab's process group would
        pooler._watcher.wait()
        processes = pooler_processes(pooler.root)
        assert processes, "PgBouncer should still run without its watcher"
        assert sweep.sweep_temp_dirs(root) == [str(abandoned)]
        _, alive = psutil.wait_procs(processes, timeout=GONE_S)
        assert not alive and not abandoned.exists(), alive
    finally:
        pooler.close()


def _poolers_of(lab_pid: int, under: Path, deadline_s: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = [p for root in under.glob(f"{sweep.PREFIX}*/*/pgbouncer") for p in pooler_processes(root)]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the lab {lab_pid} never started a PgBouncer under {under}")


@needs_pgbouncer
def test_kill_9_of_the_lab_takes_its_pgbouncer_and_the_next_run_sweeps_what_is_left(run_dir: Path) -> None:
    _needs_server()
    private = {"TMPDIR": str(run_dir)}
    argv = ("pgbouncer-prepared-statements", "--db", "postgresql", "--sequential", "--out", str(run_dir / "out"))
    lab = start_lab(*argv, cwd=run_dir, env={"FAULTLAB_POSTGRES_URL": POSTGRES_URL, **private})
    assert lab.stdout is not None
    lines = Lines(lab.stdout)
    poolers = _poolers_of(lab.pid, run_dir)
    (lab_dir,) = run_dir.glob(f"{sweep.PREFIX}*")
    lines.wait_for(STEP_LINE)
    os.kill(lab.pid, signal.SIGKILL)
    lab.wait()
    lines.text()
    _, alive = psutil.wait_procs(poolers, timeout=GONE_S)
    for process in alive:
        process.kill()
    assert not alive, f"PgBouncer outlived the lab by more than {GONE_S:g} s: {alive}"
    deadline = time.monotonic() + GONE_S
    while any(lab_dir.glob("*/pgbouncer")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(lab_dir.glob("*/pgbouncer")), "the watcher removes PgBouncer's dir"

    after = run_lab("no-commit", "--db", "postgresql", "--out", run_dir / "out2", cwd=run_dir, env=private)
    assert after.returncode == 0, after.stderr
    assert not lab_dir.exists(), after.stderr
    assert "1 temp dir, 1 database, 1 role" in after.stderr, after.stderr


def test_without_pgbouncer_the_experiment_is_skipped_with_what_to_install(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    monkeypatch.setattr(pooler_module, "find_pgbouncer", lambda: None)
    setup = load_catalogue(registry).get("pgbouncer-prepared-statements").experiment.setup
    assert "needs PgBouncer: no pgbouncer binary found" in (machine_problem(setup) or "")
    assert "apt-get install pgbouncer" in (machine_problem(setup) or "")
    with pytest.raises(Exception, match="apt-get install pgbouncer"):
        PgBouncer(run_dir).start("postgresql://role:secret@127.0.0.1:1/db")
