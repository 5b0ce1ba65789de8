"""Launch parameters and variants beyond faults/: a user's own app from its own directory, several workers."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import httpx

from faultlab import variants
from faultlab.inside import stats, wire
from faultlab.server.launch import LabServer
from faultlab.server.process import log_tail

USER_APP = textwrap.dedent(
    """
    import os

    from fastapi import FastAPI
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["DATABASE_URL"])
    app = FastAPI()


    @app.get("/ping")
    def ping() -> dict[str, int]:
        with engine.connect() as connection:
            return {"one": connection.execute(text("SELECT 1")).scalar_one()}
    """
)


def _counters(run_dir: Path, server: LabServer) -> stats.Counters:
    """Once the server has finished every request (it counts one as finished after sending its response)."""
    deadline = time.monotonic() + 5
    while True:
        counters = stats.read_all(run_dir / wire.STATS_DIR, server.pids())
        assert counters is not None, "the harness published nothing"
        if counters.in_flight == 0 or time.monotonic() > deadline:
            return counters
        time.sleep(0.01)


def test_a_users_own_app_is_served_and_its_engine_found(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "my_service.py").write_text(USER_APP)
    variant = variants.Variant("mine", "my_service:app", app_dir=tmp_path / "src")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with LabServer(variant, workdir=run_dir, env={"DATABASE_URL": f"sqlite:///{run_dir / 'mine.db'}"}) as server:
        answers = [httpx.get(f"{server.base_url}/ping").json() for _ in range(3)]
        counters = _counters(run_dir, server)
    assert answers == [{"one": 1}] * 3
    assert counters.engine and counters.pool_checkouts == 3 and counters.pool_checked_out == 0, counters


def _both_workers_up(run_dir: Path, server: LabServer) -> None:
    """The server answers once one worker does; the other may still be starting (on a busy machine, seconds)."""
    deadline = time.monotonic() + 60
    while (counters := stats.read_all(run_dir / wire.STATS_DIR, server.pids())) is None or counters.processes < 2:
        assert time.monotonic() < deadline, f"the second worker never published its counters: {counters}"
        time.sleep(0.05)


def test_several_workers_are_observed_together(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'todos.db'}"}
    with LabServer(variants.resolve("app"), workdir=tmp_path, env=env, workers=2) as server:
        _both_workers_up(tmp_path, server)
        try:
            statuses = {httpx.get(f"{server.base_url}/todos/count").status_code for _ in range(6)}
        except httpx.TransportError as exc:  # seen once in a full suite on a busy machine: what did uvicorn say?
            raise AssertionError(f"{exc!r}; the server's log:\n{log_tail(server.log_path, 40)}") from exc
        counters = _counters(tmp_path, server)
    assert statuses == {200}
    assert counters.processes == 2 and counters.requests_finished == 6, counters
