"""The harness's pool watch survives a pool event fired inside one of its own handlers, in the same thread.

That happens for real: any allocation can start a garbage collection, which may free a leaked connection,
whose finalizer fires ``checkin`` while the handler holds the watch's lock (missing-yield's writes hung on
it). Here the nested event is fired by hand, at the worst moment: inside the counters' own write.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from faultlab.inside.listeners import PoolWatch
from faultlab.inside.stats import StatsWriter, read_all


def test_a_checkin_inside_a_checkout_neither_deadlocks_nor_leaves_a_stale_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'todos.db'}")
    stats = StatsWriter(tmp_path)
    watch = PoolWatch(engine, stats)
    leaked, fresh = object(), object()
    watch._checkout(None, leaked, None)

    write = stats._write
    fired: list[bool] = []

    def write_with_a_collection_inside(index: int, value: int) -> None:
        if not fired:
            fired.append(True)
            watch._checkin(None, leaked)  # as _finalize_fairy does when a collection frees the leaked one
        write(index, value)

    monkeypatch.setattr(stats, "_write", write_with_a_collection_inside)
    worker = threading.Thread(target=watch._checkout, args=(None, fresh, None), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the nested check-in deadlocked on the watch's own lock"
    assert fired
    counters = read_all(tmp_path)
    assert counters is not None and counters.pool_checked_out == 1, counters
    engine.dispose()
