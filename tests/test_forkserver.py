"""A server the fork server forks (faultlab.server.forkserver) is the server a cold start makes, only cheaper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from faultlab import variants
from faultlab.inside.serve import PRELOADED
from faultlab.server import forkserver
from faultlab.server.launch import LabServer
from faultlab.variants import PROJECT_ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _modules(code: str, env: dict[str, str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_the_fork_server_imports_nothing_a_cold_server_would_not(tmp_path: Path) -> None:
    preloaded = _modules(
        "import importlib, faultlab.inside.serve as s\nfor n in s.PRELOADED: importlib.import_module(n)", {}
    )
    cold = _modules(
        "import faultlab.inside.serve, uvicorn.main, faultlab.inside.harness, app.main, faults.missing_yield",
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert PRELOADED and preloaded - cold == set()


def _state(tmp_path: Path, name: str) -> dict[str, Any]:
    workdir = tmp_path / name
    workdir.mkdir()
    env = {"DATABASE_URL": f"sqlite:///{workdir / 'todos.db'}", "DB_POOL_TIMEOUT": "2"}
    with LabServer(
        variants.Variant("introspect", "tests.fixtures.variants.introspect:app"), workdir=workdir, env=env
    ) as server:
        state: dict[str, Any] = httpx.get(f"{server.base_url}/_introspect").json()
        state["forked"] = isinstance(server.proc, forkserver.Forked)
    return state


def test_a_forked_server_looks_like_a_cold_one_from_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(forkserver.DISABLE_ENV, "1")
    cold = _state(tmp_path, "cold")
    monkeypatch.delenv(forkserver.DISABLE_ENV)
    _state(tmp_path, "first")
    assert forkserver.pids(), "no fork server: the servers started cold"
    warm = _state(tmp_path, "warm")
    assert warm.pop("forked") and not cold.pop("forked")
    assert "--fork-server" not in warm["argv"], warm["argv"]
    assert "faultlab.inside.harness:create_app" in warm["cmdline"], warm["cmdline"]
    for state, name in ((cold, "cold"), (warm, "warm")):
        workdir = str(tmp_path / name)
        assert state["cwd"] == workdir and workdir in state["path"]
        assert state["stdout"] == str(Path(workdir) / "server.log")
        assert state["env"]["DATABASE_URL"].startswith(f"sqlite:///{workdir}")
        normalized = json.loads(json.dumps(state).replace(workdir, "<run>"))
        state.clear()
        state.update(normalized)
    assert warm == cold


def test_a_learners_or_users_code_starts_cold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their directory could hold a module that shadows a library the fork server has imported."""
    asked: list[bool] = []
    real = forkserver.launch

    def recording(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["warm"])
        return real(*args, **kwargs)

    monkeypatch.setattr(forkserver, "launch", recording)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mine.py").write_text("from app.main import app\n")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'todos.db'}"}
    with LabServer(variants.Variant("mine", "mine:app", app_dir=tmp_path / "src"), workdir=tmp_path, env=env):
        pass
    with LabServer(variants.resolve("app"), workdir=tmp_path, env=env):
        pass
    assert asked == [False, True]


def test_a_server_outlives_its_fork_server_and_is_still_stopped_and_reaped(tmp_path: Path) -> None:
    """Its exit code is then lost (whoever adopted it reaped it), but the lab neither hangs nor leaves it."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'todos.db'}"}
    with LabServer(variants.resolve("app"), workdir=tmp_path, env=env) as server:
        assert isinstance(server.proc, forkserver.Forked) and server.proc.poll() is None
        (fork_server,) = forkserver.pids()
        os.kill(fork_server, 9)
        for _ in range(200):  # until the lab has read its end: the server is then an orphan
            if server.proc._orphaned:
                break
            time.sleep(0.05)
        assert httpx.get(f"{server.base_url}/todos").status_code == 200
        pid = server.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with LabServer(variants.resolve("app"), workdir=tmp_path, env=env, name="next") as server:
        assert isinstance(server.proc, forkserver.Forked), "a new fork server serves the next start"


def test_a_forked_server_that_fails_tells_its_exit_code(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'todos.db'}"}
    with LabServer(variants.resolve("app"), workdir=tmp_path, env=env) as server:
        proc = server.proc
        assert isinstance(proc, forkserver.Forked)
        os.killpg(proc.pid, 9)
        assert proc.wait(timeout=10) == -9
