"""How reliably the doctor finds a blocked event loop, and by what margin: the whole checkup, N times, on a
fixture app whose ``async def`` route blocks the loop after thread-pool (sync) dependencies.

    python benchmarks/bench_event_loop.py [--runs 20] [--target shop_blocking_deps:api] [--app-dir DIR]

Each run serves the app cold and runs every check (``faultlab.doctor.checkup.checkup``). Printed per run: the
route's timed request (ms), the time the loop's probes were held (``stalled``), the rule's bar (half the
request's time), their ratio (the margin: above 1 is found), the longest probe, the idle baseline (median of 20
probes) and the stall threshold it makes, the probes answered while the request ran, whether the old rule
(``probe_max >= took / 2`` and at most 2 probes answered) would have found it, and whether the doctor did
(both timed requests held). Last, how often it was found and the smallest margin. The figures are in the
README's doctor section. Not a test: a benchmark measures, a test asserts one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faultlab.doctor.checks.event_loop import BLOCKED_SHARE  # noqa: E402
from faultlab.doctor.checkup import checkup  # noqa: E402
from faultlab.doctor.exercise import stall_threshold_ms  # noqa: E402
from faultlab.plugins.registry import load_plugins  # noqa: E402

OLD_ANSWERS = 2  # the rule before: at most this many probes answered while the request ran


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--target", default="shop_blocking_deps:api")
    parser.add_argument("--app-dir", type=Path, default=ROOT / "tests" / "fixtures" / "doctor_apps")
    parser.add_argument("--operation", default="GET /stats", help="the route that blocks")
    args = parser.parse_args()
    found_runs, margins, old_found = 0, [], 0
    registry = load_plugins()
    print("run  took  stalled  bar  margin  longest  baseline  threshold  answered  old-rule  found")
    for run in range(1, args.runs + 1):
        report = checkup(registry, args.target, app_dir=args.app_dir.resolve())
        (checked,) = [c for c in report.checked if c.operation == args.operation]
        took, stalled = checked.took_ms or 0.0, checked.stalled_ms or 0.0
        bar = BLOCKED_SHARE * took
        margin = stalled / bar if bar else 0.0
        baseline = report.probe_baseline_ms or 0.0
        answered = checked.probes_answered or 0
        old = (checked.probe_max_ms or 0.0) >= took / 2 and answered <= OLD_ANSWERS
        found = any(f.kind == "event loop blocked" and f.operation == args.operation for f in report.findings)
        found_runs, old_found = found_runs + found, old_found + old
        margins.append(margin)
        print(
            f"{run:>3} {took:>6.1f} {stalled:>7.1f} {bar:>6.1f} {margin:>6.2f} {checked.probe_max_ms or 0:>8.1f} "
            f"{baseline:>8.2f} {stall_threshold_ms(baseline):>9.1f} {answered:>9} {'yes' if old else 'no':>9} "
            f"{'yes' if found else 'no':>6}"
        )
    print(
        f"found in {found_runs} of {args.runs} runs (the old rule: {old_found} of {args.runs}); margin (held time / "
        f"bar): smallest {min(margins):.2f}, median {statistics.median(margins):.2f}"
    )
    return 0 if found_runs == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
