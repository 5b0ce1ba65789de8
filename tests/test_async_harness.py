"""The harness on an async app: it finds the ``AsyncEngine`` and counts its pool through its ``sync_engine``."""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from faultlab.inside.identity import find_engine
from faultlab.inside.listeners import PoolWatch
from faultlab.inside.stats import StatsWriter, read_all


def _engine(tmp_path: Path) -> AsyncEngine:
    return create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'todos.db'}")


def test_an_async_engine_on_app_state_is_watched_through_its_sync_engine(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    target = types.SimpleNamespace(state=types.SimpleNamespace(engine=engine))
    assert find_engine(target, "no_such_module") is engine.sync_engine
    asyncio.run(engine.dispose())


def test_the_one_async_engine_of_a_loaded_module_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(tmp_path)
    module = types.ModuleType("someones_async_app")
    module.db_engine = engine  # type: ignore[attr-defined]  # not called "engine": found by the scan
    # Only this module and SQLAlchemy's: whatever else the test process loaded (app.database's engine) is no app's.
    only = {name: sys.modules[name] for name in ("sqlalchemy", "sqlalchemy.ext.asyncio")}
    monkeypatch.setattr(sys, "modules", {**only, module.__name__: module})
    assert find_engine(object(), "elsewhere") is engine.sync_engine
    asyncio.run(engine.dispose())


def test_the_pool_watch_counts_an_async_engines_checkouts(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    stats_dir = tmp_path / "stats"
    PoolWatch(engine.sync_engine, StatsWriter(stats_dir))

    async def use() -> tuple[int, int]:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            held = read_all(stats_dir)
        after = read_all(stats_dir)
        await engine.dispose()
        assert held is not None and after is not None
        return held.pool_checked_out, after.pool_checked_out

    assert asyncio.run(use()) == (1, 0)
