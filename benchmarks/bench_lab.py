"""How long the lab takes, against the floor it cannot go below.

    python benchmarks/bench_lab.py [--repeat 3]

Prints, for ``run_lab.py missing-yield`` and ``run_lab.py all`` (``-j`` the number of cores, as by default):
median wall time, and the floor: per experiment, each run's server cold start (median cold start of one
server) plus the time its steps must take (pool timeouts, locks held, waits: what the lesson needs), summed
and divided by the parallelism (experiments at a time); then their ratio. A stricter floor counts only the
longer run of an experiment whose runs go together (``together = true``). The rest is the lab's own cost:
CLI start-up, server stops, reports, observing. Each command is timed twice: as the lab runs by default, and
as it ran before the fork server and runs together (``--sequential`` with ``FAULTLAB_NO_FORKSERVER=1``: one run
at a time, every server a cold start). First, what one server start costs, cold and forked by the fork server:
wall time to its first answer, and CPU (the servers' and the fork server's, from the OS's accounting of reaped
children). Results and the machine are in the README's performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faultlab import variants  # noqa: E402
from faultlab.model.catalogue import load_catalogue  # noqa: E402
from faultlab.plugins.registry import load_plugins  # noqa: E402
from faultlab.server import forkserver  # noqa: E402
from faultlab.server.launch import LabServer  # noqa: E402


def server_starts(repeat: int, *, cold: bool) -> tuple[float, float]:
    """Median wall time of a server's start (spawn or fork to first answer), and CPU seconds per server (its
    start, its answers to the probes, its stop; with the fork server's own imports shared out)."""
    if cold:
        os.environ[forkserver.DISABLE_ENV] = "1"
    forkserver.shutdown()
    cpu_before = _children_cpu()
    times = []
    try:
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="faultlab-bench-") as tmp:
                server = LabServer(
                    variants.resolve("app"), workdir=Path(tmp), env={"DATABASE_URL": f"sqlite:///{tmp}/todos.db"}
                )
                started = time.perf_counter()
                server.start()
                times.append(time.perf_counter() - started)
                server.stop()
        forkserver.shutdown()  # reaped: its CPU and its children's are counted now
    finally:
        os.environ.pop(forkserver.DISABLE_ENV, None)
    return statistics.median(times), (_children_cpu() - cpu_before) / repeat


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(args: list[str], cold: float, *, forked: bool = True) -> tuple[float, float, float]:
    """Wall time of one run_lab.py call, and its floor's work: per experiment, each run's cold start plus its
    steps (from the journals; restarts are steps), summed (one run at a time), and with the two runs' longer
    one only where they go together."""
    env = {**os.environ, forkserver.DISABLE_ENV: "" if forked else "1"}
    catalogue = load_catalogue(load_plugins())
    with tempfile.TemporaryDirectory(prefix="faultlab-bench-") as tmp:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(ROOT / "run_lab.py"), *args, "--json", "--out", tmp],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"run_lab.py {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        work = work_together = 0.0
        for item in json.loads(done.stdout)["experiments"]:
            if not item.get("report"):
                continue  # skipped: not on this backend
            journal = json.loads((Path(item["report"]) / "journal.json").read_text())
            runs = [cold + sum(s["duration_s"] for s in r["steps"]) for r in journal["runs"].values()]
            together = catalogue.get(item["name"]).experiment.together and "--sequential" not in args
            work += sum(runs)
            work_together += max(runs) if together else sum(runs)
        return wall, work, work_together


def _wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    listing = statistics.median(_wall([sys.executable, str(ROOT / "run_lab.py"), "--list"]) for _ in range(args.repeat))
    print(f"run_lab.py --list: {listing:.2f} s (goal: well under a second; no server is started)")
    starts = max(5, args.repeat)
    cold, cold_cpu = server_starts(starts, cold=True)
    warm, warm_cpu = server_starts(starts, cold=False)
    print(
        f"one server, median of {starts} starts (spawn or fork to first answer; CPU per server, start to stop): "
        f"cold {cold:.2f} s, {cold_cpu:.2f} s CPU | forked {warm:.2f} s, {warm_cpu:.2f} s CPU"
    )
    all_names = [e.experiment.name for e in load_catalogue(load_plugins()) if "sqlite" in e.experiment.backends]
    jobs = os.cpu_count() or 1
    for label, argv, parallel in (
        ("missing-yield", ["missing-yield"], 1),
        ("all", ["all", "-j", str(jobs)], min(jobs, len(all_names))),
    ):
        runs = [timed_run(argv, cold) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        floor = statistics.median(r[1] for r in runs) / parallel
        floor_together = statistics.median(r[2] for r in runs) / parallel
        before = [timed_run([*argv, "--sequential"], cold, forked=False) for _ in range(args.repeat)]
        wall_before = statistics.median(r[0] for r in before)
        print(
            f"{label:>14}: wall {wall:5.1f} s | floor {floor:5.1f} s: wall / floor = {wall / floor:.2f} | floor "
            f"with runs together {floor_together:5.1f} s: {wall / floor_together:.2f} | as before the fork server and "
            f"runs together (--sequential, FAULTLAB_NO_FORKSERVER=1): wall {wall_before:5.1f} s "
            f"({wall_before / floor:.2f})"
        )


if __name__ == "__main__":
    main()
