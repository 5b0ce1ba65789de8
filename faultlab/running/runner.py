"""One run of an experiment (the fault run or the fix run): start the variant, execute the steps, observe.

Observing never talks to the served process: the witnesses read the harness's shared memory, the
operating system and the database (see ``faultlab.inside.stats``). A step is timed on its own; the witnesses are read
after it, once the server has finished every request the step sent (``RunContext.settle``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from faultlab import variants
from faultlab.actions import request
from faultlab.backends.base import Backend
from faultlab.backends.pooler import PgBouncer
from faultlab.backends.proxy import FaultProxy
from faultlab.backends.schema import prepare_database
from faultlab.errors import ActionError, LabError
from faultlab.inside import wire
from faultlab.interrupts import deferred
from faultlab.model.judge import judge
from faultlab.model.results import RunResult, StepResult
from faultlab.model.spec import ActionStepBase, Experiment, RequestStep, RunName
from faultlab.plugins.context import RunContext
from faultlab.plugins.observations import Observation
from faultlab.plugins.registry import Action, Registry, Unobservable, check_returned
from faultlab.running.errorlog import ErrorLog
from faultlab.running.timeline import Timeline, longest_above_zero
from faultlab.server.launch import LabServer

if TYPE_CHECKING:
    from faultlab.model.steps import Step

__all__ = ["Listener", "execute_run"]

INTERRUPTED = "interrupted (Ctrl+C, SIGTERM or SIGHUP)"


class Listener(Protocol):
    """Told what happens as it happens (the CLI prints it; tests may record it)."""

    def run_started(self, run: RunName, variant: str) -> None: ...

    def step_finished(self, run: RunName, step: StepResult) -> None: ...


class _Run:
    """The state of one run: its server, its witnesses, its actions (made once, cleaned up at the end)."""

    def __init__(
        self,
        registry: Registry,
        experiment: Experiment,
        run: RunName,
        workdir: Path,
        backend: Backend,
        variant: variants.Variant | None,
        only_witnesses: frozenset[str] | None = None,
    ) -> None:
        spec = getattr(experiment, run)
        self.variant = variant or variants.resolve(spec.variant)
        # The app's way to its database: through a fault proxy of the run's own (set-up), or straight to it.
        self.proxy = FaultProxy.in_front_of(backend.url) if experiment.setup.network == "fault-proxy" else None
        self.registry = registry
        self.pooler = PgBouncer(workdir) if experiment.setup.pooler == "pgbouncer" else None
        self.witnesses = [
            cls()
            for name, cls in registry.witnesses.items()
            if backend.name in cls.backends
            and (only_witnesses is None or name in only_witnesses)
            and (self.proxy is not None or not cls.needs_proxy)
        ]
        used = [step.action for _, step in experiment.steps_for(run) if isinstance(step, ActionStepBase)]
        inside = registry.inside_parts(self.witnesses, used)
        self.server = LabServer(
            self.variant,
            workdir=workdir,
            env={**spec.env, **({wire.INSIDE_ENV: inside} if inside else {})},
            cwd=spec.cwd,
            workers=spec.workers,
        )
        self.ctx = RunContext(run, workdir, backend, self.server, fault_proxy=self.proxy, pooler=self.pooler)
        self.backend = backend
        self.errors = ErrorLog(workdir / wire.ERRORS_DIR)
        self.sampling = [w for w in self.witnesses if w.sampled]
        self.actions: dict[str, Action] = {}

    def connect(self) -> None:
        """Point the server at its database: start what stands between first (app, PgBouncer, proxy, database)."""
        url = self.backend.url
        if self.proxy is not None:
            url = self.proxy.start().url_through(url)
        if self.pooler is not None:
            url = self.pooler.start(url)
        self.server.env["DATABASE_URL"] = url

    def disconnect(self) -> None:
        """Stop PgBouncer and the proxy, if any (every connection they hold is closed): once the server has stopped."""
        if self.pooler is not None:
            self.pooler.close()
        if self.proxy is not None:
            self.proxy.close()

    def action(self, name: str) -> Action:
        if name not in self.actions:
            self.actions[name] = self.registry.actions[name]()
        return self.actions[name]

    def cleanup(self) -> list[str]:
        """Every action's clean-up, each whatever the others do; the problems, in words."""
        problems = []
        for action in self.actions.values():
            try:
                action.cleanup(self.ctx)
            except Exception as exc:  # one failed clean-up must not skip the others
                problems.append(f"clean-up of {action.name} failed: {exc}")
        return problems

    # -- observing --------------------------------------------------------------------------------------
    def sample(self, into: dict[str, list[float]], unavailable: dict[str, str]) -> None:
        self.ctx.settle()
        for witness in self.sampling:
            try:
                sampled = witness.sample(self.ctx)
                check_returned(witness, "sample", sampled, witness.sampled)
                for name, value in sampled.items():
                    into.setdefault(name, []).append(value)
            except Unobservable as exc:
                unavailable.update({f"{name}_series": str(exc) for name in witness.sampled})
                unavailable.update({f"{name}_peak": str(exc) for name in witness.sampled})

    def observe(self) -> tuple[dict[str, Any], dict[str, str]]:
        values: dict[str, Any] = {}
        unavailable: dict[str, str] = {}
        for witness in self.witnesses:
            try:
                observed = witness.observe(self.ctx)
                check_returned(witness, "observe", observed, (spec.name for spec in witness.observations))
                values |= observed
            except Unobservable as exc:
                unavailable |= {spec.name: str(exc) for spec in witness.observations}
        return values, unavailable

    # -- steps ------------------------------------------------------------------------------------------
    def _log_size(self) -> int | None:
        """Where the step begins in the server's log (its size now): the report marks it. Read from outside."""
        try:
            return self.server.log_path.stat().st_size
        except OSError:
            return None

    def _act(self, number: int, step: ActionStepBase) -> str:
        """An action that fails for a reason of its own (the database refused, a file vanished) ends the run
        as an error that names the step, rather than as the lab's traceback."""
        try:
            return self.action(step.action).run(self.ctx, step.params())
        except LabError:
            raise
        except Exception as exc:
            self.server.check_alive("during the run")
            raise ActionError(f"step {number} ({step.action}) failed: {type(exc).__name__}: {exc}") from exc

    def execute(self, number: int, step: Step) -> StepResult:
        self.ctx.step = number
        log_offset = self._log_size()
        series: dict[str, list[float]] = {}
        unavailable: dict[str, str] = {}
        after_each: Callable[[], None] | None = None
        observing_s = 0.0  # time spent sampling between requests: not the step's own work

        def sample_between() -> None:
            nonlocal observing_s
            began = time.monotonic()
            self.sample(series, unavailable)
            observing_s += time.monotonic() - began

        if isinstance(step, RequestStep) and step.sample_each:
            after_each = sample_between
        for witness in self.witnesses:
            witness.before_step(self.ctx)
        with Timeline(self.sampling, self.ctx) as timeline:
            started = time.monotonic()
            if isinstance(step, RequestStep):
                facts = request.execute(step, self.ctx, after_each)
            elif isinstance(step, ActionStepBase):
                facts = {"action": self._act(number, step)}
            else:
                facts = {}
            duration = round(time.monotonic() - started - observing_s, 3)
        self.ctx.settle()
        self.server.check_alive("during the run")
        self.ctx.exceptions = self.errors.read_new()
        observed, missing = self.observe()
        values = facts | observed | {"duration_s": duration}
        for name, points in series.items():
            values[f"{name}_series"] = points
            values[f"{name}_peak"] = max(points)
        for witness in self.sampling:
            for name in witness.sampled:
                during = [sample.values[name] for sample in timeline.samples if name in sample.values]
                if during:
                    values[f"{name}_max_during"] = max(during)
                    values[f"{name}_above_zero_s"] = longest_above_zero(timeline.samples, name)
                else:
                    for derived in ("max_during", "above_zero_s"):
                        missing.setdefault(f"{name}_{derived}", "no sample could be taken while the step ran")
        observation = Observation(
            values=values,
            unavailable=missing | unavailable,
            timeline=timeline.samples,
            exceptions=self.ctx.exceptions,
        )
        return StepResult(
            number=number,
            kind=step.kind,
            label=step.label(),
            title=step.title,
            note=step.note,
            observation=observation,
            duration_s=duration,
            log_offset=log_offset,
            checks=judge(self.registry, step.expect.get(self.ctx.run, {}), observation, backend=self.backend.name),
        )


def execute_run(
    registry: Registry,
    experiment: Experiment,
    run: RunName,
    workdir: Path,
    listener: Listener,
    backend: Backend,
    *,
    finish_stop: Callable[[LabServer], None] | None = None,
    variant: variants.Variant | None = None,
    cancelled: threading.Event | None = None,
    only_witnesses: frozenset[str] | None = None,
) -> RunResult:
    """Run every step of ``run`` with ``registry``'s witnesses and actions; the server is stopped and the actions
    cleaned up whatever happens.

    With ``finish_stop``, the server is only told to shut down and handed over, so that its shutdown
    overlaps with what comes next; the caller must ``stop()`` it. A ``KeyboardInterrupt`` ends the run with
    status ``interrupted``; the caller decides what comes next. ``variant`` serves another app than the
    run's (a learner's own fix, ``faultlab.learn``). ``cancelled``, set from another thread, ends the run as an
    interrupt does, before its next step (a run in a thread of its own gets no KeyboardInterrupt).
    ``only_witnesses`` reads these witnesses and no other (``benchmarks/bench_observation.py``: observing
    less must see the same).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    state = _Run(registry, experiment, run, workdir, backend, variant, only_witnesses)
    result = RunResult(run=run, variant=state.variant.name, started_at=datetime.now(UTC), resources=backend.resources())
    listener.run_started(run, state.variant.name)
    problems: list[str] = []
    late_interrupt = False
    try:
        try:
            backend.create()
            setup = experiment.setup
            prepare_database(backend.url, setup.migration, [row.model_dump() for row in setup.rows])
            state.connect()
            state.server.start(cancelled=cancelled)
            for number, step in experiment.steps_for(run):
                if cancelled is not None and cancelled.is_set():
                    raise KeyboardInterrupt
                step_result = state.execute(number, step)
                result.steps.append(step_result)
                listener.step_finished(run, step_result)
        finally:
            # A second Ctrl+C must not cut the clean-up short: it is noted, and ends the run below.
            with deferred() as pending:
                problems += state.cleanup()
                if finish_stop is None or state.proxy or state.pooler:  # they go only once the server has
                    state.server.stop()
                else:
                    state.server.terminate()
                    finish_stop(state.server)
                state.disconnect()
            late_interrupt = bool(pending)
    except LabError as exc:
        result.status, result.error = "error", str(exc)
    except KeyboardInterrupt:
        result.status, result.error = "interrupted", INTERRUPTED
    finally:
        with deferred() as pending:
            try:
                backend.drop()
            except LabError as exc:
                problems.append(str(exc))
        late_interrupt = late_interrupt or bool(pending)
        if result.status == "completed" and late_interrupt:
            result.status, result.error = "interrupted", INTERRUPTED
        elif result.status == "completed" and problems:
            result.status, result.error = "error", "; ".join(problems)
        result.ended_at = datetime.now(UTC)
    return result
