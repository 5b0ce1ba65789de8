"""The database a run starts on (faultlab.backends.schema), built in the lab's own process: the example's ``app``
is imported to migrate it and must not stay there, where it would shadow a user's ``app`` imported later."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from faultlab.backends.schema import migrate_to_head, prepare_database


def _apps() -> set[str]:
    return {name for name in sys.modules if name == "app" or name.startswith("app.")}


@pytest.fixture
def without_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a lab starts: no ``app`` imported (another test may have imported the example's; it comes
    back when this test ends)."""
    for name in _apps():
        monkeypatch.delitem(sys.modules, name)


def test_preparing_and_migrating_leave_sys_modules_and_sys_path_as_they_were(without_app: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'todos.db'}"
    path = list(sys.path)
    prepare_database(url, "0001", [{"title": "kept", "completed": False}])
    assert not _apps(), f"left imported: {sorted(_apps())}"
    assert sys.path == path
    assert migrate_to_head(url) == "alembic upgrade head: 0001 → 0003"
    assert not _apps(), f"left imported: {sorted(_apps())}"
    assert sys.path == path
    with sqlite3.connect(tmp_path / "todos.db") as db:
        assert db.execute("SELECT title, priority FROM todos").fetchall() == [("kept", 0)], "migrated, rows kept"


def test_an_app_imported_before_is_left_imported(tmp_path: Path) -> None:
    import app.settings

    before = {name: sys.modules[name] for name in _apps()}
    prepare_database(f"sqlite:///{tmp_path / 'todos.db'}", "0002", [])
    assert {name: sys.modules[name] for name in before} == before
    assert _apps() == set(before), f"left imported: {sorted(_apps() - set(before))}"
    assert sys.modules["app.settings"] is app.settings
