"""The correct app as a real ``python -m app`` process: persistence, migrations at start-up, busy port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from app.migrate import current_revision, upgrade
from tests.servers import PROJECT_ROOT, free_port, interrupt, running_app


def log_of(workdir: Path) -> str:
    return "".join(p.read_text() for p in workdir.glob("app-*.log"))


def test_a_todo_survives_a_restart(tmp_path: Path, sqlite_url: str) -> None:
    with running_app(tmp_path, sqlite_url) as (base, proc):
        created = httpx.post(f"{base}/todos", json={"title": "Survive a restart"})
        assert created.status_code == 201, created.text
        # uvicorn shuts down gracefully, then re-raises SIGINT so the shell sees a Ctrl+C exit.
        assert interrupt(proc) in (0, -signal.SIGINT)
    assert "Application shutdown complete" in log_of(tmp_path)

    with running_app(tmp_path, sqlite_url) as (base, _):
        response = httpx.get(f"{base}/todos/{created.json()['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == created.json()


def test_the_async_app_serves_what_the_sync_app_wrote(tmp_path: Path, sqlite_url: str) -> None:
    """``python -m app --async``: the same database, schema and API through aiosqlite."""
    with running_app(tmp_path, sqlite_url) as (base, _):
        created = httpx.post(f"{base}/todos", json={"title": "written sync", "tags": ["a", "b"]})
    assert created.status_code == 201, created.text
    with running_app(tmp_path, sqlite_url, options=("--async",)) as (base, _):
        read = httpx.get(f"{base}/todos/{created.json()['id']}")
        listed = httpx.get(f"{base}/todos")
    assert read.status_code == 200 and read.json() == created.json(), read.text
    assert listed.json() == [created.json()], listed.text
    assert "database sqlite+aiosqlite:///" in log_of(tmp_path)


def test_an_old_database_is_migrated_at_start_up_and_keeps_its_rows(tmp_path: Path, sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO todos (title, completed) VALUES ('old one', 0), ('old two', 1)"))
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(todos)"))}
    assert "priority" not in columns

    with running_app(tmp_path, sqlite_url) as (base, _):
        todos = httpx.get(f"{base}/todos").json()
        created = httpx.post(f"{base}/todos", json={"title": "new", "priority": 5})

    assert [(t["title"], t["completed"], t["priority"], t["tags"]) for t in todos] == [
        ("old one", False, 0, []),
        ("old two", True, 0, []),
    ]
    assert created.status_code == 201, created.text
    assert current_revision(engine) == "0003"
    engine.dispose()


def test_busy_port_is_one_line_and_exit_2(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = subprocess.run(
            [sys.executable, "-m", "app", "--port", str(port), "--db", sqlite_url],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2, result
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"port {port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "todos.db").exists()


def test_non_loopback_host_needs_public(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--host", "0.0.0.0"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--public" in result.stderr


def test_default_database_is_todos_db_in_the_project_root(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", "from app import settings; print(settings.database_url())"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout.strip() == f"sqlite:///{PROJECT_ROOT / 'todos.db'}"
