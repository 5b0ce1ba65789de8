"""Does observing change what is observed? Every catalogue experiment, with the fewest witnesses and with all.

    python benchmarks/bench_observation.py [--db postgresql] [NAME ...]

Each experiment runs twice on the same backend: once reading only the witnesses its own expectations need
(``Experiment.observations_checked``), once reading every witness (as the lab always does: the report shows
them all). Printed per experiment: the witnesses read each time, both verdicts, and the key series of every
step where both runs saw them (pool checked-out peak and highest while the step ran, pool count after the
step, file descriptors on the database file, PostgreSQL sessions idle in transaction). A difference is
printed in full. The figures are in the README's "Observing does not disturb" section.

Two fresh servers of the same app do not always agree to the request (the garbage collector's sawtooth can
shift by one between processes, with or without the lab): ``--repeat 2`` runs the full set twice, so a
difference that also appears between two identical runs is noise, not the witnesses' doing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faultlab.backends.base import DEFAULT_POSTGRES_URL, BackendName, postgres_problem  # noqa: E402
from faultlab.model.catalogue import Entry, load_catalogue  # noqa: E402
from faultlab.model.results import ExperimentResult  # noqa: E402
from faultlab.plugins.registry import Registry, load_plugins  # noqa: E402
from faultlab.running.orchestrate import run_experiment  # noqa: E402

KEY = ("pool_checked_out_peak", "pool_checked_out_max_during", "pool_checked_out", "db_fds", "pg_idle_in_transaction")


def key_values(result: ExperimentResult) -> dict[tuple[str, int, str], Any]:
    return {
        (run, step.number, name): step.observation.values[name]
        for run, r in result.runs.items()
        for step in r.steps
        for name in KEY
        if name in step.observation.values
    }


def once(registry: Registry, entry: Entry, backend: BackendName, witnesses: frozenset[str] | None) -> ExperimentResult:
    with tempfile.TemporaryDirectory(prefix="faultlab-bench-") as out:
        return run_experiment(
            registry, entry, Path(out), backend=backend, postgres_url=DEFAULT_POSTGRES_URL, only_witnesses=witnesses
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="experiments (default: every one on the backend)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=1, help="runs of all witnesses, to tell noise apart")
    args = parser.parse_args()
    backend: BackendName = args.db
    if backend == "postgresql" and (problem := postgres_problem(DEFAULT_POSTGRES_URL)):
        print(f"skipped: {problem}")
        return 0
    registry = load_plugins()
    entries = [e for e in load_catalogue(registry) if backend in e.experiment.backends]
    if args.names:
        entries = [e for e in entries if e.experiment.name in args.names]
    every = frozenset(name for name, cls in registry.witnesses.items() if backend in cls.backends)
    same_verdicts = same_values = 0
    for entry in entries:
        experiment = entry.experiment
        fewest = registry.witnesses_needed(experiment.observations_checked()) & every
        few = once(registry, entry, backend, fewest)
        alls = [once(registry, entry, backend, None) for _ in range(args.repeat)]
        seen_few, seen_all = key_values(few), [key_values(r) for r in alls]
        shared = sorted(set(seen_few) & set(seen_all[0]))
        differ = [(k, seen_few[k], seen_all[0][k]) for k in shared if seen_few[k] != seen_all[0][k]]
        noise = [k for k in set(seen_all[0]) & set(seen_all[-1]) if seen_all[0][k] != seen_all[-1][k]]
        verdicts = {str(few.verdict), *(str(r.verdict) for r in alls)}
        same_verdicts += len(verdicts) == 1
        same_values += not differ
        print(
            f"{experiment.name:24} witnesses {len(fewest)}/{len(every)}  verdict "
            f"{' / '.join(sorted(verdicts)):12}  key values compared {len(shared):3}, differing {len(differ)}"
            + (f" (all vs all: {len(noise)} differ)" if args.repeat > 1 else ""),
            flush=True,
        )
        for (run, step, name), a, b in differ:
            print(f"    {run} step {step} {name}: fewest {a!r}, all {b!r}")
    print(f"\n{len(entries)} experiments on {backend}: same verdict {same_verdicts}, same key values {same_values}")
    return 0 if same_verdicts == len(entries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
