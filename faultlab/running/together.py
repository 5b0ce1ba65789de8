"""The fault run and the fix run at the same time, each on its own server, for experiments that allow it.

An experiment allows it (``together = true``) when nothing in its script measures time that a second server
on the same cores could change; its runs are otherwise as independent as two labs: each has its own temp
dir, database and server. The fault run stays in the main thread, so Ctrl+C reaches it as always; the fix
run goes in a thread, which learns of an interrupt through an event and ends before its next step. What
the fix run shows is held back while the fault run prints, then replayed, so the terminal reads as if the
runs had taken turns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from faultlab.interrupts import deferred, lost_terminal
from faultlab.model.results import RunResult, StepResult
from faultlab.model.spec import RunName
from faultlab.running.runner import Listener

__all__ = ["Relay", "run_together"]


@dataclass
class Relay:
    """A listener that holds what it is told until ``release``, then passes everything on as it comes.

    The terminal may be gone by then (a hang-up: the listener raises KeyboardInterrupt, or OSError): what is
    left to show is dropped, and ``interrupted`` says so, so the run ends as an interrupted one, with its
    report, instead of losing it to an exception in the wrong thread.
    """

    held: list[Callable[[Listener], None]] = field(default_factory=list)
    target: Listener | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    interrupted: bool = False

    def _show(self, event: Callable[[Listener], None]) -> None:
        if self.target is None or self.interrupted:
            return
        try:
            event(self.target)
        except KeyboardInterrupt:  # the listener's word for a lost terminal (faultlab.interrupts.lost_terminal)
            self.interrupted = True
        except OSError as exc:
            if lost_terminal(exc) is None:
                raise
            self.interrupted = True

    def _tell(self, event: Callable[[Listener], None]) -> None:
        with self.lock:
            if self.target is None:
                self.held.append(event)
            else:
                self._show(event)

    def run_started(self, run: RunName, variant: str) -> None:
        self._tell(lambda listener: listener.run_started(run, variant))

    def step_finished(self, run: RunName, step: StepResult) -> None:
        self._tell(lambda listener: listener.step_finished(run, step))

    def release(self, target: Listener) -> None:
        with self.lock:
            self.target = target
            for event in self.held:
                self._show(event)
            self.held.clear()


def run_together(
    fault: Callable[[], RunResult],
    fix: Callable[[Listener, threading.Event], RunResult],
    listener: Listener,
) -> tuple[RunResult, RunResult, bool]:
    """``fault()`` here and ``fix(relay, cancelled)`` in a thread: both results, and whether an interrupt came
    while the fix run was being waited for (then the fix run was cancelled, or had just ended).

    An interrupted fault run (its status says so) cancels the fix run; so does Ctrl+C while waiting for it.
    Either way the fix run's server and database are cleaned up before this returns.
    """
    relay = Relay()
    cancelled = threading.Event()
    outcome: list[RunResult | BaseException] = []

    def in_thread() -> None:
        try:
            outcome.append(fix(relay, cancelled))
        except BaseException as exc:  # handed to the main thread, which raises it
            outcome.append(exc)

    thread = threading.Thread(target=in_thread, name="faultlab-fix-run", daemon=True)
    fault_result: RunResult | None = None
    try:
        thread.start()
        fault_result = fault()
    finally:
        if fault_result is None or fault_result.status == "interrupted":
            cancelled.set()
        with deferred() as pending:
            relay.release(listener)
            while thread.ident is not None and thread.is_alive():
                thread.join(0.05)
                if pending or relay.interrupted:
                    cancelled.set()
    (fix_outcome,) = outcome
    if isinstance(fix_outcome, BaseException):
        raise fix_outcome
    return fault_result, fix_outcome, bool(pending) or relay.interrupted
