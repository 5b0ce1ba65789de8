"""The work each app does per request, counted in CPU instructions: the todo API against the idiomatic app
(benchmarks/idiomatic_api.py), in one process, the ASGI apps called directly (no network, no server).

    python benchmarks/bench_instructions.py [--requests 100]

Rates and CPU time move with whatever else the machine runs (bench_app.py's ranges); the number of
instructions a request executes hardly moves (two repetitions agree within 0.2 %), so a change of a few
per cent shows. Runs under valgrind's callgrind (~50 times slower): after a warm-up it zeroes the counters,
sends the requests one after another, and reads the count, for each app and path. Both apps get the
garbage-collector tuning ``python -m app`` applies, so the count is the apps' own work. Needs ``valgrind``
(``apt-get install valgrind``); without it the script says so and exits 0. Results: README, "Performance".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = {"app": "app.main", "idiomatic": "benchmarks.idiomatic_api"}  # each module's ``app``
PATHS = ["/todos/1", "/todos?limit=100"]
REPETITIONS = 2


def signal(sync: Path, message: str) -> None:
    """Tell the controller where the inner run is, and wait until it has acted (zeroed or read the counters)."""
    sync.with_suffix(".tmp").write_text(message)
    os.replace(sync.with_suffix(".tmp"), sync)
    deadline = time.monotonic() + 600
    while sync.read_text() != f"ack {message}":
        if time.monotonic() > deadline:
            raise SystemExit(f"the controller did not answer {message!r} within 600 s")
        time.sleep(0.05)


async def inner(sync: Path, requests: int) -> None:
    """Under callgrind: each app and path, warmed up, then ``requests`` sequential requests between signals."""
    import gc
    import importlib
    from contextlib import AsyncExitStack

    from app.__main__ import _tune_garbage_collector

    apps = {name: importlib.import_module(module).app for name, module in APPS.items()}

    async def get(api: object, path: str) -> None:
        route, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
                 "path": route, "raw_path": route.encode(), "query_string": query.encode(), "root_path": "",
                 "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
                 "state": {}}  # fmt: skip
        started: list[int] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                started.append(int(message["status"]))  # type: ignore[call-overload]

        await api(scope, receive, send)  # type: ignore[operator]
        assert started == [200], (path, started)

    async with AsyncExitStack() as stack:
        for api in apps.values():
            await stack.enter_async_context(api.router.lifespan_context(api))
        for api in apps.values():
            for path in PATHS:
                for _ in range(20):
                    await get(api, path)
        _tune_garbage_collector()
        for repetition in range(REPETITIONS):
            for path in PATHS:
                for name, api in apps.items():
                    for _ in range(5):
                        await get(api, path)
                    signal(sync, f"zero {name} {path} {repetition}")
                    for _ in range(requests):
                        await get(api, path)
                    signal(sync, f"read {name} {path} {repetition}")
        gc.collect()
    signal(sync, "end")


def seed(database: Path) -> None:
    """100 todos with two tags each, as bench_app.py seeds them, through the app's own API."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": str(ROOT)}
    script = (
        "from fastapi.testclient import TestClient\nfrom app.main import app\nwith TestClient(app) as c:\n"
        "    for i in range(100):\n"
        "        c.post('/todos', json={'title': f'todo {i}', 'priority': i % 101, 'tags': ['home', f'tag {i}']})"
        ".raise_for_status()\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True)


def instructions(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction count in {dump}")


def control(workdir: Path, requests: int) -> dict[tuple[str, str], list[float]]:
    """Run the inner part under callgrind; zero the counters at each 'zero', read them at each 'read'."""
    sync = workdir / "sync"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'todos.db'}", "PYTHONPATH": str(ROOT)}
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/cg.%p"]
    argv += [sys.executable, __file__, "--inner", str(sync), "--requests", str(requests)]
    log = (workdir / "callgrind.log").open("w")
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)
    counts: dict[tuple[str, str], list[float]] = {}
    try:
        while (message := sync.read_text() if sync.exists() else "") != "end":
            if proc.poll() is not None:
                tail = (workdir / "callgrind.log").read_text()[-2000:]
                raise SystemExit(f"the run under callgrind ended early:\n{tail}")
            if not message or message.startswith("ack "):
                time.sleep(0.05)
                continue
            verb, name, path, _ = message.split()
            if verb == "zero":
                subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
            else:
                before = set(workdir.glob("cg.*"))
                subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
                total = sum(instructions(dump) for dump in set(workdir.glob("cg.*")) - before)
                counts.setdefault((name, path), []).append(total / requests)
            sync.with_suffix(".tmp").write_text(f"ack {message}")
            os.replace(sync.with_suffix(".tmp"), sync)
        sync.write_text("ack end")
        proc.wait(600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="requests counted per app, path and repetition")
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        asyncio.run(inner(args.inner, args.requests))
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("skipped: valgrind is not on PATH (apt-get install valgrind)")
        return
    with tempfile.TemporaryDirectory(prefix="faultlab-instructions-") as tmp:
        workdir = Path(tmp)
        seed(workdir / "todos.db")
        counts = control(workdir, args.requests)
    print(f"instructions per request (millions), {args.requests} requests, {REPETITIONS} repetitions")
    for path in PATHS:
        app, idiomatic = min(counts[("app", path)]), min(counts[("idiomatic", path)])
        spread = max(counts[("app", path)]) / app - 1
        print(f"GET {path:18} app {app / 1e6:7.3f}  idiomatic {idiomatic / 1e6:7.3f}  ", end="")
        print(f"idiomatic / app {idiomatic / app:.0%}  (repetitions within {spread:.1%})")


if __name__ == "__main__":
    main()
