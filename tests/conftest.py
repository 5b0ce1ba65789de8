"""Shared fixtures. Every database a test touches lives under a temp dir, never in the project."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from faultlab.plugins.registry import Registry
    from tests.catalogue_runs import Cache
    from tests.doctor_runs import DoctorRuns

# Set before anything imports `app`, so the app's module-level engine can never reach ./todos.db.
_SAFETY_DIR = tempfile.TemporaryDirectory(prefix="faultlab-tests-")
os.environ["DATABASE_URL"] = f"sqlite:///{Path(_SAFETY_DIR.name) / 'todos.db'}"
# Hypothesis keeps caches in ./.hypothesis unless told otherwise.
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(Path(_SAFETY_DIR.name) / "hypothesis")


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis would keep its example database in ./.hypothesis: tests write nothing outside temp dirs.
    from hypothesis import settings

    settings.register_profile("faultlab", database=None)
    # CI must be reproducible: the same examples every run. Locally, every run explores new ones.
    settings.register_profile("faultlab-ci", database=None, derandomize=True)
    settings.load_profile("faultlab-ci" if os.environ.get("CI") else "faultlab")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers more than the cores. Most of a test's time is spent waiting on real servers
    (start-ups, pool timeouts, the doctor's deadlines, the slow calls the experiments make), so spare workers keep
    the cores busy; measured on 2 cores: 5:03 with 2 workers, 4:10 with 3 (2026-11), and on 2026-12-08 with 551
    tests 5:58 with 3, 5:25 with 4 (then the sum of the tests' times over the workers is the wall time: the cores,
    not the waits, set it). ``--maxprocesses`` still caps it."""
    return (os.cpu_count() or 1) + 2


def pytest_unconfigure(config: pytest.Config) -> None:
    _SAFETY_DIR.cleanup()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order in which pytest-xdist hands the tests out, one at a time (``--maxschedchunk 1``): the modules
    of the longest tests first, so that no long test starts when the others are done; then the rest; last, the
    tests that only read a catalogue run (``results``) that test_experiment_behaves_as_expected has made by
    then, so that they seldom wait for one another worker is still making."""
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}

    def order(item: pytest.Item) -> tuple[bool, int]:
        if not isinstance(item, pytest.Function):
            return False, len(rank)
        reads_a_run = "results" in item.fixturenames and item.originalname != _RUNS_THEM
        return reads_a_run, rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank))

    items.sort(key=order)  # stable: as collected within a module


_RUNS_THEM = "test_experiment_behaves_as_expected"
# Modules by their longest test, longest first (--durations on 2 cores): most run labs and real servers, some
# several one after another.
_LONGEST_FIRST = (
    "test_learn",
    "test_openapi_contract",
    "test_load",
    "test_lifetime",
    "test_doctor",
    "test_hostile_input",
    "test_cli",
    "test_parallel",
    "test_interrupt",
    "test_together",
    "test_pytest_plugin",
    "test_alembic_cli",
    "test_observation",
    "test_forkserver",
    "test_hostile_cli",
    "test_experiments",
    "test_docs_offline",
    "test_launch",
    "test_truth",
    "test_failures",
    "test_app_errors",
    "test_hostile_files",
)


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The plugins, loaded once per session, as the command line loads them once per command."""
    from faultlab.plugins.registry import load_plugins

    return load_plugins()


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """The session's catalogue runs (tests/catalogue_runs.py): ``results.get(name, backend)``."""
    from tests.catalogue_runs import Cache

    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has its own base temp dir inside the session's: share the session's.
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "experiment-results"
    root.mkdir(exist_ok=True)
    return Cache(root)


@pytest.fixture(scope="session")
def doctor_runs(tmp_path_factory: pytest.TempPathFactory) -> DoctorRuns:
    """The session's doctor checkups (tests/doctor_runs.py): ``doctor_runs.get(target, app_dir)``."""
    from tests.doctor_runs import DoctorRuns

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "doctor-runs"
    root.mkdir(exist_ok=True)
    return DoctorRuns(root)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'todos.db'}"


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    """The correct API on its own fresh, migrated SQLite file."""
    from tests.apis import todo_api

    with todo_api(sqlite_url) as test_client:
        yield test_client


_TEST_VARIANTS = Path(__file__).parent / "fixtures" / "variants"


@pytest.fixture
def test_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let experiments name the variants in tests/fixtures/variants (broken on purpose; the lab's own are in
    faults/)."""
    from faultlab import variants

    extra = sorted(p.stem for p in _TEST_VARIANTS.glob("*.py") if not p.stem.startswith("_"))
    real_names, real_resolve = variants.names, variants.resolve
    monkeypatch.setattr(variants, "names", lambda: [*real_names(), *extra])
    monkeypatch.setattr(
        variants,
        "resolve",
        lambda v: variants.Variant(v, f"tests.fixtures.variants.{v}:app") if v in extra else real_resolve(v),
    )


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Every test must stop whatever it started: a leftover child fails the test (and is killed)."""
    import psutil

    yield
    from faultlab.server import forkserver

    # The lab's fork server (faultlab.server.forkserver) is the process's, not the test's: it goes at exit.
    children = [p for p in psutil.Process().children(recursive=True) if p.pid not in forkserver.pids()]
    if not children:
        return
    _, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        child.kill()
    assert not alive, f"processes left running: {[(p.pid, p.cmdline()) for p in alive]}"


_NOT_OURS = {".git", ".venv", "__pycache__", "build"}


def _project_files() -> dict[str, tuple[int, int]]:
    """Every file of the checkout with its size and mtime, leaving out the VCS, the venv and bytecode."""
    root = Path(__file__).resolve().parent.parent
    found: dict[str, tuple[int, int]] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _NOT_OURS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(directory, name)
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="session", autouse=True)
def project_untouched() -> Iterator[None]:
    """The suite writes only to temp dirs: the checkout is the same file for file afterwards."""
    before = _project_files()
    yield
    after = _project_files()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"the tests wrote into the project: {changed}"
