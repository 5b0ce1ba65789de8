"""How long the lab takes, against the floor set by the server cold starts it cannot avoid.

    python benchmarks/bench_lab.py [--repeat 3]

Prints, for ``run_lab.py missing-yield`` and ``run_lab.py all``: median wall time; the floor (server starts
needed × median cold start of one server); the time the steps themselves take (pool timeouts and bursts
are part of the lesson; the lab's probes after each step count there too); and the lab's own overhead (the
rest: CLI start-up, server stops, reports).
Goals: missing-yield under 10 s wall; overhead under 30 % of the floor. Measured 2026-11-25 on a 2-core
machine (one repetition, with a test suite running beside it): --list 0.20 s (pydantic's import is most of
it); cold start 0.54 s; missing-yield 4.2 s wall (steps 2.6 s, of which 2 s is the pool timeout the lesson
needs), overhead 0.5 s = 48 % of its 1.1 s floor; all (the five SQLite experiments) 18.9 s, overhead 20 %.
What is left for missing-yield is the CLI's own start-up and the last server's graceful stop, which must end
before the report is written (so that its log ends with its shutdown); the other stops overlap with the next
run. Observing costs the server nothing: the witnesses read shared memory and /proc from the lab's side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import variants  # noqa: E402
from lab.catalogue import load_catalogue  # noqa: E402
from lab.server import LabServer  # noqa: E402
from lab.spec import ActionStepBase  # noqa: E402


def cold_start_s(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="faultlab-bench-") as tmp:
            server = LabServer(
                variants.resolve("app"), workdir=Path(tmp), env={"DATABASE_URL": f"sqlite:///{tmp}/todos.db"}
            )
            started = time.perf_counter()
            server.start()
            times.append(time.perf_counter() - started)
            server.stop()
    return statistics.median(times)


def server_starts(names: list[str]) -> tuple[int, int]:
    """(first starts, restarts): a restart is a step, so its time is already in the steps' time."""
    catalogue = load_catalogue()
    first = restarts = 0
    for name in names:
        experiment = catalogue.get(name).experiment
        for run in ("fault", "fix"):
            first += 1
            restarts += sum(
                isinstance(s, ActionStepBase) and s.action == "restart" for _, s in experiment.steps_for(run)
            )
    return first, restarts


def timed_run(args: list[str]) -> tuple[float, float]:
    """Wall time of one run_lab.py call, and the summed duration of its steps (from the journals)."""
    with tempfile.TemporaryDirectory(prefix="faultlab-bench-") as tmp:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(ROOT / "run_lab.py"), *args, "--json", "--out", tmp], capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"run_lab.py {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        steps = 0.0
        for item in json.loads(done.stdout)["experiments"]:
            if not item.get("report"):
                continue  # skipped: not on this backend
            journal = json.loads((Path(item["report"]) / "journal.json").read_text())
            steps += sum(s["duration_s"] for r in journal["runs"].values() for s in r["steps"])
        return wall, steps


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
    cold = cold_start_s(args.repeat)
    print(f"server cold start (spawn to first answer), median of {args.repeat}: {cold:.2f} s")
    all_names = [e.experiment.name for e in load_catalogue() if "sqlite" in e.experiment.backends]
    for label, names, argv in (("missing-yield", ["missing-yield"], ["missing-yield"]), ("all", all_names, ["all"])):
        runs = [timed_run(argv) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        steps = statistics.median(r[1] for r in runs)
        first, restarts = server_starts(names)
        floor = (first + restarts) * cold
        overhead = max(wall - first * cold - steps, 0.0)
        print(
            f"{label:>14}: wall {wall:5.1f} s | floor {floor:4.1f} s ({first + restarts} server starts) | "
            f"steps {steps:4.1f} s (restarts included) | "
            f"lab overhead {overhead:4.1f} s = {overhead / floor:4.0%} of the floor"
        )


if __name__ == "__main__":
    main()
