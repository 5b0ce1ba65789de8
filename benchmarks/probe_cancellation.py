"""Do cancelled requests leak connections from the async app's pool, on the versions installed here?

    python benchmarks/probe_cancellation.py [--db sqlite|postgresql://URL] [--requests 8]

Serves the async app (``app.async_main``) on uvicorn with two routes more, each running one slow query
(``pg_sleep(1)``; on SQLite a recursive count of about a second) through the request's ``AsyncSession``:
``/slow``, which the client gives up on after 0.2 s (a client that disconnects or times out), and
``/slow-timeout``, which cancels its own query after 0.2 s (``asyncio.timeout``, as a timeout middleware
does). After ``--requests`` of each, prints the pool's checked-out count (and on PostgreSQL the app's sessions
by state) at once and after 0.5, 2 and 5 s, then whether the app still answers. A leak would be a count that
stays up. This is a probe, not an experiment: the lab's catalogue has none for cancellation because it did
not leak here (README, design notes).
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
GIVE_UP_S = 0.2
SLOW_SQL = {
    "postgresql": "SELECT pg_sleep(1)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
    "SELECT count(*) FROM c",
}


def build() -> Any:
    """The async app with the two slow routes and a pool route (uvicorn ``--factory``)."""
    from sqlalchemy import text

    from app.async_database import AsyncDbSession, make_async_engine
    from app.async_main import create_async_app

    engine = make_async_engine(os.environ["DATABASE_URL"])
    api = create_async_app(engine=engine)
    slow = text(SLOW_SQL[engine.dialect.name])

    @api.get("/slow")
    async def run_slow(db: AsyncDbSession) -> dict[str, bool]:
        await db.execute(slow)
        return {"done": True}

    @api.get("/slow-timeout")
    async def run_slow_with_timeout(db: AsyncDbSession) -> dict[str, bool]:
        async with asyncio.timeout(GIVE_UP_S):
            await db.execute(slow)
        return {"done": True}

    @api.get("/pool")
    async def pool() -> dict[str, int]:
        return {"checked_out": engine.pool.checkedout()}  # type: ignore[attr-defined]

    return api


def _sessions(url: str) -> str:
    if not url.startswith("postgresql"):
        return ""
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT state, count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return ", PostgreSQL sessions " + (", ".join(f"{state} {n}" for state, n in rows) or "none")


def probe(base: str, url: str, path: str, requests: int) -> None:
    answers = []
    for _ in range(requests):
        try:
            answers.append(str(httpx.get(base + path, timeout=GIVE_UP_S + 0.1).status_code))
        except httpx.TimeoutException:
            answers.append("gave up")
    print(f"{path}: {', '.join(answers)}")
    waited = 0.0
    for wait in (0.0, 0.5, 2.0, 5.0):
        time.sleep(wait - waited)
        waited = wait
        checked_out = httpx.get(base + "/pool", timeout=10).json()["checked_out"]
        print(f"  after {wait:g} s: checked out {checked_out}{_sessions(url)}")
    print(f"  then: {[httpx.get(base + '/todos', timeout=10).status_code for _ in range(3)]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL the probe may write to")
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{workdir}/todos.db" if args.db == "sqlite" else args.db
        listener = socket.create_server(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        command = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.probe_cancellation:build"]
        server = subprocess.Popen(
            [*command, "--fd", str(listener.fileno()), "--log-level", "critical"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
            pass_fds=(listener.fileno(),),
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(base + "/pool", timeout=1)
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the server did not start within 30 s") from None
                    time.sleep(0.1)
            for path in ("/slow", "/slow-timeout"):
                probe(base, url, path, args.requests)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            listener.close()


if __name__ == "__main__":
    main()
