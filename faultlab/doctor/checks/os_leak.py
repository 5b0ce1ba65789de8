"""The operating system's count of the server's connections to the database (``faultlab.doctor.os_view``), read
before and after each request: a leak it sees is a finding (the pool's own, when both see it), and where it
and the pool disagree the report says so and why it may be."""

from __future__ import annotations

from itertools import pairwise

from faultlab.doctor.contract import Check, CheckupContext, Exercised
from faultlab.doctor.report import Checked, Finding, NotRun

__all__ = ["OsLeak"]

_REMEDY = "run the doctor on Linux, as a user who may read the server's /proc entries"
# Why these findings name no line: the harness notes where a connection is taken only at the watched pool's checkout.
OUTSIDE = (
    "no checkout was recorded for these connections: they were opened outside the engine the doctor watches, "
    "and the operating system's count says how many, not where"
)
NO_ENGINE_WATCHED = (
    "no checkout was recorded: the doctor watches no SQLAlchemy engine of the app, and the operating system's "
    "count says how many connections, not where they were opened"
)
UNSEEN_POOL = "the pool's leak names no line either"


def _judged(checked: Checked) -> bool:
    """The OS's count tells a leak only over two requests or more: the first may open the connection a pool
    then keeps (and a delete is sent once)."""
    return len(checked.statuses) >= 2 and len(checked.os_open) == len(checked.statuses) + 1


def _leak(checked: Checked) -> bool:
    """The count rose with every request, the first included, and never fell back (the collector off), and
    not because the pool refilled itself (``_pool_refilled``)."""
    if not _judged(checked) or _pool_refilled(checked):
        return False
    before, after = checked.os_open[0], checked.os_open[1:]
    return after[-1] > before and all(later > earlier for earlier, later in pairwise(after))


def _pool_refilled(checked: Checked) -> bool:
    """The pool opened every new connection the OS saw and holds them checked in: the watched pool refilling
    itself, not a leak. An async pool does this after the collector terminated connections a leak kept (their
    places in the pool stay, without a connection, and each next checkout opens one)."""
    if len(checked.pool_open) != len(checked.os_open) or len(set(checked.checked_out)) != 1:
        return False
    return checked.pool_open[-1] - checked.pool_open[0] >= checked.os_open[-1] - checked.os_open[0]


class OsLeak(Check):
    name = "connection leaks seen by the OS"

    def start(self, ctx: CheckupContext) -> None:
        """The count, read once before any request: where it cannot be read, this check does not run."""
        live = ctx.live
        if live.seen_by_os() is None or live.os is None:
            ctx.report.not_checked.append(NotRun(self.name, live.os_problem, _REMEDY))
            return
        ctx.report.os_witness = live.os.what

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        live, report, checked = ctx.live, ctx.report, exercised.checked
        if live.os is None or not checked.os_open:
            return []
        what, seen = live.os.what, "→".join(map(str, checked.os_open))
        pool_leak = next((f for f in found if f.kind == "connection leak"), None)
        os_leak = _leak(checked)
        if pool_leak is not None and os_leak:
            pool_leak.evidence += f"; the operating system saw them too: {what} {seen}"
            return []
        checked_out = "→".join(map(str, checked.checked_out))
        if pool_leak is not None and _judged(checked):
            report.disagreements.append(
                Finding(
                    "the witnesses disagree",
                    checked.operation,
                    f"the pool kept connections checked out ({checked_out}) while the operating system saw no new "
                    f"one ({what} {seen}): the pool handed out connections it already held open, which the OS had "
                    "counted before; here the pool's count is the one that shows the leak",
                    # The pool's leak, where it says it is: the same connections.
                    location=pool_leak.location,
                    unlocated=pool_leak.unlocated or ("" if pool_leak.location else UNSEEN_POOL),
                )
            )
        if not os_leak:
            return []
        before, after = checked.os_open[0], checked.os_open[1:]
        kept = after[-1] - before
        collected = checked.os_after_collection
        if collected is None:
            then = ""
        elif collected <= before:
            then = (
                f"; once the garbage collector ran, {collected}: they close only when the collector happens to run "
                "(a connection caught in a reference cycle), at moments nobody chooses"
            )
        else:
            then = (
                f"; once the garbage collector ran, still {collected} (one more request was timed meanwhile): "
                "something keeps them, nothing closes them"
            )
        if checked.checked_out:
            report.disagreements.append(
                Finding(
                    "the witnesses disagree",
                    checked.operation,
                    f"the operating system saw {what} climb ({seen}) while the pool gave every connection back "
                    f"(checked out {checked_out}): connections opened outside the engine the doctor watches (the "
                    "database driver used directly, or another engine)",
                    unlocated=OUTSIDE,
                )
            )
        return [
            Finding(
                "connection leak (seen by the OS)",
                checked.operation,
                f"{what} {seen} over {len(after)} requests with the collector off (before, then after each): {kept} "
                f"more open, about {kept / len(after):g} per request{then}",
                unlocated=OUTSIDE if checked.checked_out else NO_ENGINE_WATCHED,
            )
        ]

    def end(self, ctx: CheckupContext) -> None:
        """It could be read at first, and then no more: not run either."""
        if ctx.live.os is None and ctx.report.os_witness:
            ctx.report.not_checked.append(NotRun(self.name, ctx.live.os_problem, _REMEDY))
