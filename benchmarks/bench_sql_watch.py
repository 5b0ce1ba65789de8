"""Does counting SQL statements change what the server does? The same app, under the same harness, with and
without the statement watch (``before_cursor_execute``), compared on bodies and latency.

    python benchmarks/bench_sql_watch.py [--reads 300] [--rounds 3] [--target faults.n_plus_one:app]

Each round starts one server of each kind (alternating which goes first), creates 20 todos with two tags,
then reads the list ``--reads`` times, one at a time, and times each read. Prints the median p50 and p95 of
each kind, and whether every body (``created_at`` aside) was the same. Measured 2026-11-25 on the 2-core
machine with other test suites running (3 rounds of 300 reads of 20 todos, four runs): the correct app p50
2.50-2.83 ms with the watch, 2.50-2.68 ms without; ``faults.n_plus_one:app`` (21 statements a read)
4.87-5.37 ms against 4.66-4.95 ms; every body the same. More in README.md ("Counting statements").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def create_app_without_sql_watch() -> Any:
    """The lab's harness with the statement watch replaced by nothing (served by uvicorn --factory)."""
    import faultlab.inside.harness

    class NoWatch:
        lazy_loads = None

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

    faultlab.inside.harness.SqlWatch = NoWatch  # type: ignore[attr-defined,assignment]  # the name create_app() looks up
    return faultlab.inside.harness.create_app()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(factory: str, target: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'todos.db'}",
        "FAULTLAB_TARGET": target,
        "FAULTLAB_RUN_DIR": str(tmp),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "uvicorn", factory, "--factory", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/_lab/ready").status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{factory} did not start within 30 s")


def measure(factory: str, target: str, reads: int) -> tuple[list[float], list[Any]]:
    with tempfile.TemporaryDirectory(prefix="faultlab-bench-") as tmp:
        process, base = _serve(factory, target, Path(tmp))
        try:
            with httpx.Client(base_url=base) as client:
                for i in range(20):
                    client.post("/todos", json={"title": f"todo {i}", "tags": ["home", "urgent"]}).raise_for_status()
                latencies, bodies = [], []
                for _ in range(reads):
                    started = time.perf_counter()
                    response = client.get("/todos")
                    latencies.append((time.perf_counter() - started) * 1000)
                    bodies.append(re.sub(r'"created_at":"[^"]*"', '"created_at":""', response.text))
            return latencies, [json.loads(b) for b in dict.fromkeys(bodies)]
        finally:
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", default="app.main:app", help="the app to serve (default: the correct one)")
    args = parser.parse_args()
    kinds = {
        "with": "faultlab.inside.harness:create_app",
        "without": "benchmarks.bench_sql_watch:create_app_without_sql_watch",
    }
    p50: dict[str, list[float]] = {k: [] for k in kinds}
    p95: dict[str, list[float]] = {k: [] for k in kinds}
    bodies: dict[str, list[Any]] = {k: [] for k in kinds}
    for round_ in range(args.rounds):
        for kind in sorted(kinds, reverse=bool(round_ % 2)):
            latencies, distinct = measure(kinds[kind], args.target, args.reads)
            ordered = sorted(latencies)
            p50[kind].append(statistics.median(ordered))
            p95[kind].append(ordered[int(0.95 * len(ordered)) - 1])
            bodies[kind] += distinct
    for kind in kinds:
        print(
            f"{kind} the statement watch: p50 {statistics.median(p50[kind]):.2f} ms "
            f"(rounds {', '.join(f'{v:.2f}' for v in p50[kind])}), p95 {statistics.median(p95[kind]):.2f} ms"
        )
    same = all(b == bodies["with"][0] for kind in kinds for b in bodies[kind])
    print(f"bodies (created_at aside): {'all the same' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
