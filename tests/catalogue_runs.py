"""One run of each catalogue experiment per backend in a test session, shared by every test that reads it.

tests/test_experiments.py runs each one (``test_experiment_behaves_as_expected``); any other test reads a run
with the ``results`` fixture: ``results.get(name, backend)``. conftest.py hands out the tests that run them
early and the tests that only read them last, so that a reader seldom waits for a run another worker is
still doing.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from filelock import FileLock

from faultlab.backends.base import DEFAULT_POSTGRES_URL, BackendName, postgres_problem
from faultlab.model.catalogue import load_catalogue
from faultlab.model.results import ExperimentResult
from faultlab.model.setup import machine_problem
from faultlab.plugins.registry import load_plugins
from faultlab.running.orchestrate import run_experiment

__all__ = ["CATALOGUE", "POSTGRES_URL", "REGISTRY", "Cache"]

# Loaded when the tests are collected (they are parametrized by the catalogue), so not the session fixture.
REGISTRY = load_plugins()
CATALOGUE = load_catalogue(REGISTRY)
POSTGRES_URL = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@functools.cache
def _postgres_problem() -> str | None:
    return postgres_problem(POSTGRES_URL)


class Cache:
    """Each experiment runs once per backend in a test session, even across pytest-xdist's workers: the first
    test (in any worker) that needs it runs it, under a file lock, and leaves the result for the others."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.memo: dict[tuple[str, BackendName], ExperimentResult] = {}

    def get(self, name: str, backend: BackendName = "sqlite") -> ExperimentResult:
        setup = CATALOGUE.get(name).experiment.setup
        if backend == "postgresql" and (problem := machine_problem(setup)):  # binaries the run needs
            pytest.skip(problem)
        if setup.database != "own-cluster" and backend == "postgresql" and (problem := _postgres_problem()):
            pytest.skip(f"{problem}; set FAULTLAB_POSTGRES_URL to a server where the lab may create databases")
        if (name, backend) not in self.memo:
            stem = self.root / f"{name}-{backend}"
            with FileLock(f"{stem}.lock"):
                saved = Path(f"{stem}.json")
                if saved.exists():
                    result = ExperimentResult.model_validate_json(saved.read_text(encoding="utf-8"))
                else:
                    result = run_experiment(
                        REGISTRY, CATALOGUE.get(name), stem, backend=backend, postgres_url=POSTGRES_URL
                    )
                    saved.write_text(result.model_dump_json(), encoding="utf-8")
            self.memo[name, backend] = result
        return self.memo[name, backend]
