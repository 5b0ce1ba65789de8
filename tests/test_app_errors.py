"""``python -m app`` with a database it cannot use: one line saying what and what to do, before any banner,
exit 2, and the file left as it was (a missing directory is not created)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from app.migrate import upgrade

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-PASSWORD"


def _app(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "--port", "0", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _newer(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('ffffffffffff')")
    connection.close()


CASES: dict[str, tuple[Callable[[Path], None] | None, str]] = {
    "missing-dir": (None, "the directory of {db} does not exist; create it"),
    "corrupt": (lambda p: p.write_text("not a database, just text"), "{db} is not a SQLite database"),
    "newer": (_newer, "was migrated by a newer version of this app (Can't locate revision identified by 'ffff"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unusable_database_file_is_one_line_and_is_left_alone(case: str, tmp_path: Path) -> None:
    make, message = CASES[case]
    db = tmp_path / ("missing/dir/todos.db" if case == "missing-dir" else "todos.db")
    if make is not None:
        make(db)
    before = (db.read_bytes(), db.stat().st_mtime_ns) if db.exists() else None
    result = _app(tmp_path, "--db", f"sqlite:///{db}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message.format(db=db) in result.stderr, result.stderr
    assert "todo API:" not in result.stdout, "the banner came before the error"
    after = (db.read_bytes(), db.stat().st_mtime_ns) if db.exists() else None
    assert after == before, "the database file was changed"
    assert not db.parent.exists() or case != "missing-dir", "a missing directory was created"


# A read-only checkout, for root too (chmod does not stop root): the directory bind-mounted read-only in a
# private mount namespace, which ends with the process.
READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'


def _read_only(directory: Path, *command: str) -> list[str]:
    return ["unshare", "--mount", "--map-root-user", "sh", "-c", READ_ONLY, "sh", str(directory), *command]


def _migrated(revision: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        engine = create_engine(f"sqlite:///{path}")
        upgrade(engine, revision)
        engine.dispose()

    return make


READ_ONLY_CASES: dict[str, tuple[Callable[[Path], None] | None, str]] = {
    "no-file": (None, "cannot open or create {db} (unable to open database file)"),
    "current-file": (_migrated("head"), "{db} cannot be written (the file is read-only)"),
    "old-file": (_migrated("0001"), "{db} cannot be written (the file is read-only)"),
}


@pytest.mark.parametrize("case", sorted(READ_ONLY_CASES))
def test_a_read_only_location_is_one_line_and_is_left_alone(case: str, tmp_path: Path) -> None:
    if (
        shutil.which("unshare") is None
        or subprocess.run(_read_only(tmp_path, "true"), capture_output=True, check=False).returncode
    ):
        pytest.skip("cannot mount a read-only directory here (needs unshare and a mount namespace)")
    make, message = READ_ONLY_CASES[case]
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    db = checkout / "todos.db"
    if make is not None:
        make(db)
    before = (db.read_bytes(), db.stat().st_mtime_ns) if db.exists() else None
    result = subprocess.run(
        _read_only(checkout, sys.executable, "-m", "app", "--port", "0", "--db", f"sqlite:///{db}"),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message.format(db=db) in result.stderr, result.stderr
    assert "todo API:" not in result.stdout, "the banner came before the error"
    after = (db.read_bytes(), db.stat().st_mtime_ns) if db.exists() else None
    assert after == before, "the database file was changed"
    assert sorted(checkout.iterdir()) == ([db] if make else []), "a file was created"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "notaurl"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL": f"postgresql://u:{SECRET}@127.0.0.1:notaport/p"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL": f"postgresql://u:{SECRET}@127.0.0.1:1/p"}, "cannot use the database at postgresql://u:***@"),
        ({"DB_POOL_SIZE": "abc"}, "DB_POOL_SIZE='abc' is not a valid int; set it to a number"),
    ],
)
def test_bad_settings_are_one_line_without_the_password(env: dict[str, str], message: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'todos.db'}", **env}
    result = _app(tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert SECRET not in result.stderr + result.stdout and "todo API:" not in result.stdout


def test_the_ipv6_banner_puts_the_address_in_brackets(tmp_path: Path) -> None:
    import socket
    import time

    from faultlab.server.process import spawn, stop

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    log = tmp_path / "app.log"
    proc = spawn(
        [sys.executable, "-m", "app", "--host", "::1", "--port", "0", "--db", f"sqlite:///{tmp_path / 'todos.db'}"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"},
        log_path=log,
    )
    try:
        deadline = time.monotonic() + 30
        while "/docs to try it" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert "todo API: http://[::1]:" in log.read_text(), log.read_text()
    finally:
        stop(proc)
