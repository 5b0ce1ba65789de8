"""A blocked event loop: while the timed request ran (``faultlab.doctor.exercise``), a probe that needs only the
loop stalled for most of it, and again when the request was sent once more.

The margin is measured, not tuned to a machine: a probe stalled when it waited ``STALL_FACTOR`` times longer
than the median of 20 probes with the same server idle (``Report.probe_baseline_ms``); the loop was held for
the time those stalled probes waited. Probes answered before and after the block (while a dependency runs in
the thread pool, while the response is written) count for nothing either way: the old rule, "at most 2
probes answered", passed a blocking route with thread-pool dependencies by a margin of one probe.
"""

from __future__ import annotations

from typing import Any

from faultlab.doctor.contract import Check, CheckupContext, Exercised, LoopProbe
from faultlab.doctor.exercise import HOLD_S, loop_probe, stall_threshold_ms
from faultlab.doctor.report import Finding, Location
from faultlab.doctor.where import locate

__all__ = ["BLOCKED_MS", "BLOCKED_SHARE", "EventLoop", "blocked"]

BLOCKED_MS = 100.0  # an operation slower than this may hold the loop...
BLOCKED_SHARE = 0.5  # ...if the loop's probes stalled for at least this share of its time, twice in a row


def blocked(probe: LoopProbe) -> bool:
    return probe.took_ms > BLOCKED_MS and probe.stalled_ms >= BLOCKED_SHARE * probe.took_ms


class EventLoop(Check):
    """Blocked: a slow operation during which the loop's probes stalled for half its time or more, seen on two
    timed requests (a one-off hiccup of a busy machine is not a block). A write is timed while another
    connection holds the write lock, so a route that waits for it on the loop shows too."""

    name = "event loop blocked"

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        first = exercised.probe
        if not exercised.timed or first is None or not blocked(first):
            return []
        ctx.live.loop_arm()  # where the loop is held, sampled from a thread of the harness while it confirms
        again = loop_probe(ctx.live, exercised.operation, exercised.item_id)
        held_at = ctx.live.loop_held_at()
        ctx.live.errors.read_new()  # the confirming request's, not counted in this operation's statuses
        if not blocked(again):
            return []
        threshold = stall_threshold_ms(ctx.live.probe_baseline_ms)
        lock = f"; it ran while another connection held the write lock {HOLD_S:g} s" if first.locked else ""
        return [
            Finding(
                "event loop blocked",
                exercised.checked.operation,
                f"it took {first.took_ms:g} ms (then {again.took_ms:g} ms); the probes that need only the event loop "
                f"were held {first.stalled_ms:g} ms (then {again.stalled_ms:g} ms; the longest wait "
                f"{first.slowest_ms:g} ms, against a median of {ctx.live.probe_baseline_ms:g} ms with the server idle, "
                f"a probe counting as held past {threshold:g} ms): every other request waits as long "
                f"(blocking work in an async def route){lock}",
                location=_held_at(ctx, held_at),
            )
        ]


def _held_at(ctx: CheckupContext, held_at: list[dict[str, Any]]) -> Location | None:
    """The ``async def`` that held the loop (where the fix goes), with the blocking line inside it."""
    if not held_at:
        return None
    top = held_at[0]
    blocking = locate(top.get("blocking"), ctx.app_dir)
    same = blocking is not None and (blocking.path, blocking.line) == (top.get("file"), top.get("line"))
    inner = f" (at {blocking.file}:{blocking.line})" if blocking is not None and not same else ""
    return locate(
        top,
        ctx.app_dir,
        f"this coroutine held the event loop in blocking work{inner}: make the route a def, or await it in a "
        "thread (run_in_threadpool)",
    )
