"""The correct app under bounded load on a real server: no 5xx, nothing lost, no connection kept.

How fast it serves is benchmarks/bench_app.py's question, not this test's: here, 32 clients at once, each a
mix of writes and reads."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from faultlab import variants
from faultlab.inside import stats, wire
from faultlab.running.errorlog import ErrorLog
from faultlab.server.launch import LabServer

CLIENTS = 32
REQUESTS = 480  # in all, over loopback only: 15 a client


def _client_work(
    base: str,
    seed: int,
    count: int,
    created: list[int],
    deleted: list[int],
    lock: threading.Lock,
    statuses: Counter[int],
) -> None:
    rng = random.Random(seed)
    mine: list[int] = []
    # A connection of its own for each request, as the lab's client: after a 500 the server drops the connection
    # (the next request on it would fail with a reset, not count as the 5xx it follows), and uvicorn closes one
    # left idle for 5 s, which httpx would reuse (a client thread kept from the CPU sends into a closing socket).
    with httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        for i in range(count):
            roll = rng.random()
            if roll < 0.4 or not mine:
                response = http.post(
                    "/todos", json={"title": f"client {seed} todo {i}", "priority": rng.randint(0, 100)}
                )
                if response.status_code == 201:
                    mine.append(response.json()["id"])
                    with lock:
                        created.append(mine[-1])
            elif roll < 0.55:
                response = http.get("/todos", params={"completed": rng.choice(["true", "false"])})
            elif roll < 0.7:
                response = http.get(f"/todos/{rng.choice(mine)}")
            elif roll < 0.9:
                response = http.patch(f"/todos/{rng.choice(mine)}", json={"completed": rng.random() < 0.5})
            else:
                victim = mine.pop(rng.randrange(len(mine)))
                response = http.delete(f"/todos/{victim}")
                if response.status_code == 204:
                    with lock:
                        deleted.append(victim)
            with lock:
                statuses[response.status_code] += 1


def test_correct_app_under_mixed_load(tmp_path: Path) -> None:
    server = LabServer(
        variants.resolve("app"), workdir=tmp_path, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'todos.db'}"}
    )
    created: list[int] = []
    deleted_ids: list[int] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    with server:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(
                    _client_work, server.base_url, seed, REQUESTS // CLIENTS, created, deleted_ids, lock, statuses
                )
                for seed in range(CLIENTS)
            ]
            for future in futures:
                future.result()
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            remaining = _all_ids(http)
            unreadable = [i for i in remaining if http.get(f"/todos/{i}").status_code != 200]
        checked_out = _settled_checked_out(tmp_path, server.pids())
        errors = ErrorLog(tmp_path / wire.ERRORS_DIR).read_new()

    assert sum(statuses.values()) == REQUESTS // CLIENTS * CLIENTS
    assert not [s for s in statuses if s >= 500], f"5xx under load: {statuses}; server errors: {errors[:3]}"
    assert set(statuses) <= {200, 201, 204}, statuses
    assert not errors, errors[:3]
    # SQLite reuses the highest rowid after it is deleted, so one id can be created twice: count, not set.
    alive = Counter(created)
    alive.subtract(Counter(deleted_ids))
    assert remaining == {i for i, n in alive.items() if n > 0}, (
        "a created todo went missing, or a deleted one came back"
    )
    assert not unreadable
    assert checked_out == 0


def _all_ids(http: httpx.Client) -> set[int]:
    """Every todo's id, a page at a time."""
    ids: set[int] = set()
    while page := http.get("/todos", params={"offset": len(ids)}).json():
        ids.update(t["id"] for t in page)
    return ids


def _settled_checked_out(run_dir: Path, pids: set[int]) -> int:
    """The pool's checked-out count from the harness's shared memory, once it stops moving (5 s at most)."""
    deadline = time.monotonic() + 5
    while True:
        counters = stats.read_all(run_dir / wire.STATS_DIR, pids)
        assert counters is not None and counters.engine, "the harness published no pool counters"
        if counters.pool_checked_out == 0 or time.monotonic() > deadline:
            return counters.pool_checked_out
        time.sleep(0.05)
