"""One run of an experiment (the fault run or the fix run): start the variant, execute the steps, observe."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from lab import client, variants
from lab.backends import Backend, SqliteBackend
from lab.errors import LabError, ServerError
from lab.judge import judge
from lab.observations import Observation, ServerException
from lab.results import RunResult, StepResult
from lab.server import LabServer
from lab.setup import prepare_database
from lab.spec import ActionStep, Experiment, ProbeStep, RequestStep, RunName, RunSpec, Step

__all__ = ["Listener", "execute_run"]

SETTLE_DEADLINE_S = 1.0
SETTLE_INTERVAL_S = 0.03


class Listener(Protocol):
    """Told what happens as it happens (the CLI prints it; tests may record it)."""

    def run_started(self, run: RunName, variant: str) -> None: ...

    def step_finished(self, run: RunName, step: StepResult) -> None: ...


class _Run:
    """The state of one run: its server, its database file, and the server errors already attributed."""

    def __init__(self, experiment: Experiment, run: RunName, workdir: Path, backend: Backend) -> None:
        self.spec: RunSpec = getattr(experiment, run)
        self.backend = backend
        env = {**self.spec.env, "DATABASE_URL": backend.url}
        self.server = LabServer(variants.target(self.spec.variant), workdir=workdir, env=env, name="server")
        self.errors_seen = 0

    # -- evidence -------------------------------------------------------------------------------------
    def _probe(self, path: str, *, method: str = "GET") -> dict[str, Any]:
        try:
            return client.probe(self.server.base_url, path, method=method)
        except httpx.HTTPError as exc:
            self.server.check_alive("during the run")
            raise ServerError(f"the lab harness did not answer {method} {path}: {exc}") from exc

    def pool(self) -> dict[str, Any]:
        return self._probe("/_lab/pool")

    def settled_pool(self) -> dict[str, Any]:
        """A yield dependency's cleanup runs after the response is sent: read until the count stops moving."""
        deadline = time.monotonic() + SETTLE_DEADLINE_S
        last = self.pool()
        while time.monotonic() < deadline:
            time.sleep(SETTLE_INTERVAL_S)
            current = self.pool()
            if current.get("checked_out") == last.get("checked_out"):
                return current
            last = current
        return last

    def new_server_errors(self) -> list[ServerException]:
        answer = self._probe(f"/_lab/errors?since={self.errors_seen}")
        self.errors_seen = answer["total"]
        return [ServerException(**error) for error in answer["errors"]]

    def common_evidence(self) -> dict[str, Any]:
        pool = self.settled_pool()
        errors = self.new_server_errors()
        return {
            "pool_checked_out": pool.get("checked_out"),
            "pool_overflow": pool.get("overflow"),
            "exceptions": len(errors),
            "error": "\n".join(dict.fromkeys(str(e) for e in errors)) or None,
            **self.backend.evidence(self.server.pid),
        }

    # -- steps ----------------------------------------------------------------------------------------
    def execute(self, step: Step) -> Observation:
        started = time.monotonic()
        if isinstance(step, RequestStep):
            facts = self._request(step)
        elif isinstance(step, ActionStep):
            facts = {"action": self._action(step)}
        else:
            assert isinstance(step, ProbeStep)
            facts = {}
        facts.update(self.common_evidence())
        facts["duration_s"] = round(time.monotonic() - started, 3)
        return Observation(**facts)

    def _request(self, step: RequestStep) -> dict[str, Any]:
        pool_series: list[int] = []
        fd_series: list[int] = []

        def sample(_: client.Outcome) -> None:
            pool_series.append(self.settled_pool().get("checked_out", -1))
            if isinstance(self.backend, SqliteBackend):
                fds = self.backend.evidence(self.server.pid)["db_fds"]
                fd_series.append(-1 if fds is None else fds)

        outcomes = client.send_many(
            self.server.base_url,
            step.method,
            step.path,
            step.json_body,
            repeat=step.repeat,
            concurrency=step.concurrency,
            timeout_s=step.timeout_s,
            after_each=sample if step.sample_each else None,
        )
        statuses = Counter(o.status for o in outcomes if o.status is not None)
        first_failure = next((i for i, o in enumerate(outcomes, 1) if not o.ok), None)
        last = outcomes[-1]
        facts: dict[str, Any] = {
            "requests": len(outcomes),
            "status": next(iter(statuses)) if len(statuses) == 1 and sum(statuses.values()) == len(outcomes) else None,
            "statuses": {str(code): n for code, n in sorted(statuses.items())},
            "ok": sum(o.ok for o in outcomes),
            "server_errors": sum(1 for o in outcomes if o.status is not None and o.status >= 500),
            "timeouts": sum(o.failure == "timeout" for o in outcomes),
            "transport_errors": sum(o.failure == "transport" for o in outcomes),
            "first_failure_at": first_failure,
            "rows": last.rows,
            "body": last.body,
        }
        if step.sample_each:
            facts["pool_checked_out_series"] = pool_series
            facts["pool_checked_out_peak"] = max(pool_series, default=None)
            facts["db_fds_series"] = fd_series or None
        return facts

    def _action(self, step: ActionStep) -> str:
        match step.action:
            case "delete_db":
                assert isinstance(self.backend, SqliteBackend), "the spec allows delete_db on sqlite only"
                removed = [p.name for p in self.backend.files() if _unlink(p)]
                return f"deleted {', '.join(removed)}" if removed else "nothing to delete: no database file"
            case "restart":
                old_pid = self.server.pid
                self.server.restart()
                self.errors_seen = 0
                return f"restarted the server (pid {old_pid} → {self.server.pid})"
            case "migrate":
                from lab.setup import migrate_to_head

                return migrate_to_head(self.backend.url)
            case "gc_collect":
                answer = self._probe("/_lab/gc", method="POST")
                before, after = answer["before"].get("checked_out"), answer["after"].get("checked_out")
                return f"gc.collect() in the server: checked out {before} → {after}"
            case "gc_disable" | "gc_enable":
                switch = step.action.removeprefix("gc_")
                self._probe(f"/_lab/gc/{switch}", method="POST")
                return f"the server's garbage collector is {switch}d"
            case "wait":
                assert step.seconds is not None
                time.sleep(step.seconds)
                return f"waited {step.seconds:g} s"
        raise AssertionError(step.action)  # pragma: no cover - the spec allows no other action


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def execute_run(
    experiment: Experiment,
    run: RunName,
    workdir: Path,
    listener: Listener,
    backend: Backend,
    *,
    finish_stop: Callable[[LabServer], None] | None = None,
) -> RunResult:
    """Run every step of ``run``; the server is stopped whatever happens, Ctrl+C included.

    With ``finish_stop``, the server is only told to shut down and handed over, so that its shutdown
    overlaps with what comes next; the caller must ``stop()`` it. A ``KeyboardInterrupt`` ends the run with
    status ``interrupted``; the caller decides what comes next.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    state = _Run(experiment, run, workdir, backend)
    result = RunResult(run=run, variant=state.spec.variant, started_at=datetime.now(UTC))
    listener.run_started(run, state.spec.variant)
    try:
        backend.create()
        prepare_database(experiment.setup, backend.url)
        state.server.start()
        for number, step in experiment.steps_for(run):
            observation = state.execute(step)
            step_result = StepResult(
                number=number,
                kind=step.kind,
                label=step.label(),
                title=step.title,
                note=step.note,
                observation=observation,
                checks=judge(step.expect.get(run, {}), observation, backend=backend.name),
            )
            result.steps.append(step_result)
            listener.step_finished(run, step_result)
    except LabError as exc:
        result.status, result.error = "error", str(exc)
    except KeyboardInterrupt:
        result.status, result.error = "interrupted", "interrupted (Ctrl+C or SIGTERM)"
    finally:
        if finish_stop is None:
            state.server.stop()
        else:
            state.server.terminate()
            finish_stop(state.server)
        try:
            backend.drop()
        except LabError as exc:
            result.status, result.error = "error", result.error or str(exc)
        result.ended_at = datetime.now(UTC)
    return result
