"""A blocked event loop: the timed request (``faultlab.doctor.exercise``), slow, while a probe that needs only the
loop got (almost) no answer."""

from __future__ import annotations

from faultlab.doctor.contract import Check, CheckupContext, Exercised
from faultlab.doctor.exercise import HOLD_S
from faultlab.doctor.report import Finding

__all__ = ["BLOCKED_ANSWERS", "BLOCKED_MS", "EventLoop"]

BLOCKED_MS = 100.0  # an operation slower than this, with a probe waiting half as long, may hold the loop
BLOCKED_ANSWERS = 2  # ...if at most this many probes were answered while it ran


class EventLoop(Check):
    """Blocked: a slow operation during which (almost) no probe got through, however long one waited; a busy
    machine slows probes, but a free loop still answers them. A write is timed while another connection holds
    the write lock, so a route that waits for it on the loop shows too."""

    name = "event loop blocked"

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        checked = exercised.checked
        if not exercised.timed or checked.took_ms is None or checked.probe_max_ms is None:
            return []
        slow = checked.took_ms > BLOCKED_MS and checked.probe_max_ms >= checked.took_ms / 2
        if not slow or exercised.answered_meanwhile > BLOCKED_ANSWERS:
            return []
        lock = f"; it ran while another connection held the write lock {HOLD_S:g} s" if exercised.locked else ""
        return [
            Finding(
                "event loop blocked",
                checked.operation,
                f"it took {checked.took_ms:g} ms; a probe that needs only the event loop waited "
                f"{checked.probe_max_ms:g} ms and {exercised.answered_meanwhile} got through meanwhile: every other "
                f"request waits as long (blocking work in an async def route){lock}",
            )
        ]
