"""An experiment end to end: fault run, fix run, verdict, report; temp dirs and servers always cleaned up."""

from __future__ import annotations

import platform
import shutil
import sqlite3
import tempfile
import threading
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from faultlab import owner
from faultlab.backends import sweep
from faultlab.backends.base import DEFAULT_POSTGRES_URL, Backend, BackendName, PostgresBackend, SqliteBackend
from faultlab.backends.cluster import OwnCluster
from faultlab.errors import UsageError
from faultlab.interrupts import deferred, hold
from faultlab.model.catalogue import Entry
from faultlab.model.results import ExperimentResult, RunResult, StepResult, Verdict
from faultlab.model.spec import RUNS, Experiment, RunName
from faultlab.model.validate import conclude
from faultlab.plugins.registry import Registry
from faultlab.reports.report import write_report
from faultlab.running.runner import Listener, execute_run
from faultlab.running.together import run_together
from faultlab.server.launch import LabServer

__all__ = ["Interrupted", "QuietListener", "run_experiment", "versions"]

PACKAGES = ("fastapi", "starlette", "sqlalchemy", "uvicorn", "pydantic", "alembic", "httpx")


class QuietListener:
    def run_started(self, run: RunName, variant: str) -> None:
        pass

    def step_finished(self, run: RunName, step: StepResult) -> None:
        pass


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def run_experiment(
    registry: Registry,
    entry: Entry,
    out_dir: Path,
    *,
    listener: Listener | None = None,
    keep: bool = False,
    backend: BackendName = "sqlite",
    postgres_url: str = DEFAULT_POSTGRES_URL,
    together: bool = True,
    only_witnesses: frozenset[str] | None = None,
) -> ExperimentResult:
    """Both runs in a private temp dir, with ``registry``'s witnesses and actions; the report is written even
    when the run errs or is interrupted.

    On ``postgresql`` each run gets its own throwaway database on the server at ``postgres_url``. The two
    runs go at the same time (``faultlab.running.together``) when the experiment allows it and ``together`` is left on.
    ``only_witnesses`` limits what is read (``faultlab.running.runner.execute_run``).
    """
    listener = listener or QuietListener()
    experiment = entry.experiment
    if backend not in experiment.backends:
        raise UsageError(f"{experiment.name} applies to {', '.join(experiment.backends)} only, not {backend}")
    result = ExperimentResult(
        name=experiment.name,
        title=experiment.title,
        backend=backend,
        experiment_file=str(entry.path),
        versions=versions(),
        started_at=datetime.now(UTC),
    )
    workdir = make_run_dir(experiment.name)
    if keep:
        result.kept_dir = str(workdir)
    stopping: list[LabServer] = []  # servers shutting down while the lab goes on; reaped below
    interrupted_late = False
    cluster: OwnCluster | None = None  # setup.database = "own-cluster": a server of the run's own, made below

    def store(run: RunName) -> Backend:
        if backend == "sqlite":
            return SqliteBackend(workdir / run)
        if cluster is None:
            return PostgresBackend(postgres_url, label=f"{experiment.name}-{run}")
        cluster.ensure_running()  # the run before may have left it killed or paused
        made = PostgresBackend(cluster.admin_url, label=f"{experiment.name}-{run}")
        made.cluster = cluster
        return made

    def one(run: RunName, told: Listener, cancelled: threading.Event | None = None) -> RunResult:
        return execute_run(
            registry,
            experiment,
            run,
            workdir / run,
            told,
            store(run),
            finish_stop=stopping.append,
            cancelled=cancelled,
            only_witnesses=only_witnesses,
        )

    try:
        try:
            if experiment.setup.database == "own-cluster" and backend == "postgresql":
                with deferred() as pending:  # registered as soon as it exists: a Ctrl+C must not orphan it
                    cluster = OwnCluster(workdir, max_connections=experiment.setup.max_connections)
                if pending:
                    raise KeyboardInterrupt
                cluster.create()
            if experiment.together and together:
                result.runs["fault"], result.runs["fix"], interrupted_late = run_together(
                    lambda: one("fault", listener), lambda told, cancelled: one("fix", told, cancelled), listener
                )
            else:
                for run in RUNS:
                    result.runs[run] = one(run, listener)
                    if result.runs[run].status == "interrupted":
                        break
        except KeyboardInterrupt:  # between two runs' own handling: what was observed so far is still reported
            interrupted_late = True
        # Every server has stopped before the report is written, so its log ends with its shutdown. A Ctrl+C
        # now (often the second, impatient one) must not lose the evidence: it waits for the report.
        with deferred() as pending:
            _stop_all(stopping)
            result.ended_at = datetime.now(UTC)
            conclude(registry, result, experiment)
            result.report_dir = str(_publish(registry, result, experiment, out_dir, workdir))
        interrupted_late = interrupted_late or bool(pending)
    finally:
        with deferred():
            _stop_all(stopping)
            if cluster is not None:
                cluster.remove()
            if keep:  # asked for: no longer the lab's to remove, so a later lab's sweep leaves it alone
                (workdir / sweep.OWNER_FILE).unlink(missing_ok=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if result.verdict is Verdict.INTERRUPTED or interrupted_late:
        hold()  # a Ctrl+C still to come must not cut the verdict short: the lab ends with 130 anyway
        raise Interrupted(result)
    return result


def _publish(
    registry: Registry, result: ExperimentResult, experiment: Experiment, out_dir: Path, workdir: Path
) -> Path:
    """The report where it was asked for; failing that (--out gone, replaced by a file, read-only), in a temp
    dir of its own, and the result says where and why: the evidence of a run is never lost."""
    try:
        return write_report(registry, result, experiment, out_dir, workdir)
    except OSError as exc:
        result.report_problem = f"could not write the report to {out_dir}: {exc.strerror or exc}"
    fallback = Path(tempfile.mkdtemp(prefix=f"faultlab-report-{experiment.name}-"))
    return write_report(registry, result, experiment, fallback, workdir)


def make_run_dir(name: str) -> Path:
    """A private temp dir for both runs, marked with its owner so that a later lab can sweep it if this one
    is killed (``faultlab.backends.sweep``)."""
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"{sweep.PREFIX}{name}-"))
        (workdir / sweep.OWNER_FILE).write_text(owner.me().to_json(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"no usable temp dir ({tempfile.gettempdir()}: {exc.strerror or exc}); set TMPDIR to a writable directory"
        ) from None
    return workdir


def _stop_all(servers: list[LabServer]) -> None:
    while servers:
        servers.pop().stop()


class Interrupted(KeyboardInterrupt):
    """Ctrl+C or SIGTERM during an experiment; carries what was observed so far (already reported)."""

    def __init__(self, result: ExperimentResult) -> None:
        super().__init__(result.name)
        self.result = result
