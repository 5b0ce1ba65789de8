"""The standard alembic commands work from the project root, and a learner's new column goes end to end:
model, ``alembic revision --autogenerate``, ``alembic upgrade head``, the column in the database."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.servers import PROJECT_ROOT

ALEMBIC = [sys.executable, "-m", "alembic"]


def _alembic(*args: str, cwd: Path, database: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([*ALEMBIC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_upgrade_head_and_check_from_the_project_root(tmp_path: Path) -> None:
    database = tmp_path / "todos.db"
    upgraded = _alembic("upgrade", "head", cwd=PROJECT_ROOT, database=database)
    assert upgraded.returncode == 0, upgraded.stderr
    # The models and the migrations agree: autogenerate finds nothing to do.
    checked = _alembic("check", cwd=PROJECT_ROOT, database=database)
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout


def test_adding_a_column_end_to_end(tmp_path: Path) -> None:
    """The seed's mastery check, in a copy of the project (the real one is never written)."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "app", project / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "alembic.ini", project)
    models = project / "app" / "models.py"
    anchor = "    created_at: Mapped[datetime]"
    assert anchor in models.read_text()
    models.write_text(
        models.read_text().replace(anchor, f"    notes: Mapped[str | None] = mapped_column(String(500))\n{anchor}")
    )
    database = tmp_path / "todos.db"
    versions = project / "app" / "migrations" / "versions"
    head = max(int(p.name[:4]) for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))

    assert _alembic("upgrade", "head", cwd=project, database=database).returncode == 0
    generated = _alembic("revision", "--autogenerate", "-m", "add notes", cwd=project, database=database)
    assert generated.returncode == 0, generated.stderr
    migration = versions / f"{head + 1:04d}_add_notes.py"
    assert migration.is_file(), sorted(p.name for p in versions.iterdir())
    assert "add_column(sa.Column('notes', sa.String(length=500)" in migration.read_text()
    upgraded = _alembic("upgrade", "head", cwd=project, database=database)
    assert upgraded.returncode == 0, upgraded.stderr
    with sqlite3.connect(database) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(todos)")}
    conn.close()
    assert "notes" in columns, columns
