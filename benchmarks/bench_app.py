"""The todo API's throughput over real HTTP, against the same API written the way FastAPI's SQL tutorial
writes it (benchmarks/idiomatic_api.py: SQLModel, no relationship), side by side in one run.

    python benchmarks/bench_app.py [--rounds 5] [--seconds 4] [--connections 16]

Four servers, each one uvicorn worker on 127.0.0.1 with its own SQLite file in a temp dir, all started
before the first measurement and idle while another one is measured:

- ``app``: the todo API as it is served (``python -m app``), 100 todos with two tags each;
- ``app, no tags``: the same, 100 todos without tags, so that what the tags cost shows on its own;
- ``idiomatic``: benchmarks/idiomatic_api.py under uvicorn's defaults, on a copy of ``app``'s file (the
  same 100 rows; it has no tags);
- ``idiomatic, tuned``: the same with the garbage-collector tuning ``python -m app`` applies, so that the
  part of the ratio that tuning buys shows too.

Every server logs each request, as ``python -m app`` and uvicorn do by default. Each round measures every
scenario on every server, one server at a time (wrk, 16 connections, 4 s), the servers' order rotating
from round to round, after a warm-up run of each. Besides the rate, the server's CPU time per request (from
the OS): the rate moves with whatever else the machine runs, the CPU time much less. Ranges are over the
rounds; a ratio pairs the rates of the same round. The goals (issue 18), judged on the median ratio against
``idiomatic``: the list of 100 at least 60 % of its rate, one todo at least 90 %.

Needs ``wrk`` on PATH (``apt-get install wrk``): a Python load generator on the same cores caps the rate it
can measure. Without it the script says so and exits 0. Results and where the time goes: README,
"Performance".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faultlab.server.process import log_tail, spawn, stop  # noqa: E402
from tests.servers import free_port  # noqa: E402

ROWS = 100
LIST, ONE = "GET /todos (100 rows)", "GET /todos/{id}"
SCENARIOS = {LIST: "/todos?limit=100", ONE: "/todos/1"}
GOALS = {LIST: 0.60, ONE: 0.90}
APP, NO_TAGS, IDIOMATIC, TUNED = "app", "app, no tags", "idiomatic", "idiomatic, tuned"
SERVERS = [APP, NO_TAGS, IDIOMATIC, TUNED]
# The idiomatic app under uvicorn, after the same garbage-collector tuning as python -m app.
TUNED_SERVER = """import sys, uvicorn
from app.__main__ import _tune_garbage_collector
import benchmarks.idiomatic_api
_tune_garbage_collector()
uvicorn.run("benchmarks.idiomatic_api:app", port=int(sys.argv[1]))
"""


@dataclass
class Server:
    base: str
    process: psutil.Process

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


def command(server: str, port: int) -> list[str]:
    if server in (APP, NO_TAGS):
        return [sys.executable, "-m", "app", "--port", str(port)]
    if server == TUNED:
        return [sys.executable, "-c", TUNED_SERVER, str(port)]
    return [sys.executable, "-m", "uvicorn", "benchmarks.idiomatic_api:app", "--port", str(port)]


@contextmanager
def serving(argv: Sequence[str], port: int, database: Path, log: Path) -> Iterator[Server]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": str(ROOT)}
    proc = spawn(argv, cwd=ROOT, env=env, log_path=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/todos?limit=1", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{' '.join(argv)} did not answer within 30 s:\n{log_tail(log)}")
            time.sleep(0.05)
        yield Server(base, psutil.Process(proc.pid))
    finally:
        stop(proc)


def seed(base: str, *, tags: bool) -> None:
    for i in range(ROWS):
        body = {"title": f"todo {i}", "priority": i % 101, "tags": ["home", f"tag {i}"] if tags else []}
        httpx.post(f"{base}/todos", json=body).raise_for_status()


def copy_database(source: Path, target: Path) -> None:
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def check_same_rows(servers: dict[str, Server]) -> None:
    lists = {name: httpx.get(server.base + SCENARIOS[LIST]).json() for name, server in servers.items()}
    titles = {name: [todo["title"] for todo in todos] for name, todos in lists.items()}
    assert all(len(t) == ROWS for t in titles.values()) and len({tuple(t) for t in titles.values()}) == 1, titles
    assert all(todo["tags"] == ["home", f"tag {i}"] for i, todo in enumerate(lists[APP])), lists[APP][0]


def wrk(url: str, seconds: float, connections: int) -> tuple[float, int]:
    """Requests per second, and how many requests were answered."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"GET {url} answered errors under load:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    assert rate and done, out
    return float(rate.group(1)), int(done.group(1))


def span(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}-{high}"


def percent(values: Sequence[float]) -> str:
    return f"{span([v * 100 for v in values])} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("skipped: wrk is not on PATH (apt-get install wrk); a Python load generator would cap the rates")
        return
    rates = {s: {server: [] for server in SERVERS} for s in SCENARIOS}
    cpu_ms = {s: {server: [] for server in SERVERS} for s in SCENARIOS}
    with tempfile.TemporaryDirectory(prefix="faultlab-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        servers: dict[str, Server] = {}

        def start(name: str, database: Path) -> None:
            port = free_port()
            log = workdir / f"{port}.log"
            servers[name] = stack.enter_context(serving(command(name, port), port, database, log))

        start(APP, workdir / "app.db")
        start(NO_TAGS, workdir / "no-tags.db")
        seed(servers[APP].base, tags=True)
        seed(servers[NO_TAGS].base, tags=False)
        for name in (IDIOMATIC, TUNED):
            copy_database(workdir / "app.db", workdir / f"{name}.db")
            start(name, workdir / f"{name}.db")
        check_same_rows({name: servers[name] for name in (APP, IDIOMATIC, TUNED)})
        for path in SCENARIOS.values():
            for server in servers.values():
                wrk(server.base + path, 1, args.connections)
        for round_ in range(args.rounds):
            order = SERVERS[round_ % len(SERVERS) :] + SERVERS[: round_ % len(SERVERS)]
            for scenario, path in SCENARIOS.items():
                for name in order:
                    before = servers[name].cpu_seconds()
                    rate, done = wrk(servers[name].base + path, args.seconds, args.connections)
                    rates[scenario][name].append(rate)
                    cpu_ms[scenario][name].append((servers[name].cpu_seconds() - before) / done * 1000)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"req_per_s": rates, "cpu_ms_per_request": cpu_ms}, indent=2))
    report(rates, cpu_ms, args)


def report(
    rates: dict[str, dict[str, list[float]]], cpu_ms: dict[str, dict[str, list[float]]], args: argparse.Namespace
) -> None:
    def ratios(scenario: str, server: str, against: str = IDIOMATIC) -> list[float]:
        return [a / b for a, b in zip(rates[scenario][server], rates[scenario][against], strict=True)]

    print(
        f"wrk, {args.connections} connections, {args.seconds:g} s a run, {args.rounds} rounds; ranges over the rounds"
    )
    print(f"{'':40}{'req/s':>10}{'CPU ms/req':>12}{'/ idiomatic':>14}{'/ tuned':>12}")
    for scenario in SCENARIOS:
        print(scenario)
        for server in SERVERS:
            row = f"  {server:38}{span(rates[scenario][server]):>10}{span(cpu_ms[scenario][server], '{:.1f}'):>12}"
            if server != IDIOMATIC:
                row += f"{percent(ratios(scenario, server)):>14}"
            if server in (APP, NO_TAGS):
                row += f"{percent(ratios(scenario, server, TUNED)):>12}"
            print(row)
    tags = ratios(LIST, APP, NO_TAGS)
    print(f"the tags (two a todo) leave the list {percent(tags)} of its rate without them")
    for scenario, goal in GOALS.items():
        median = statistics.median(ratios(scenario, APP))
        verdict = "met" if median >= goal else "NOT met"
        print(f"goal: {scenario} at >= {goal:.0%} of the idiomatic rate: {verdict} (median {median:.0%})")


if __name__ == "__main__":
    main()
