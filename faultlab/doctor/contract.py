"""The contract of the doctor's checks, as the catalogue's plugins have theirs (``faultlab.plugins.contract``): a check
is a class with a ``name`` (as the report names it), the ``backends`` where it applies, and any of four
hooks, each documented here; the checkup (``faultlab.doctor.checkup``) calls them in the order of
``faultlab.doctor.checks.BUILTIN_CHECKS``. A check adds findings and the checks that did not run (with why, and
what to do) to the report; it reads the app only through ``CheckupContext.live`` (``faultlab.doctor.live``).

    class Leak(Check):
        name = "connection leaks seen by the pool"
        def operation(self, ctx, exercised, found):
            return [Finding("connection leak", ...)] if ... else []

A check whose ``backends`` leave out the run's database is listed as not applicable ("PostgreSQL only",
with how to include it) before any operation, and none of its hooks is called; nor are those of a check
whose ``needs`` names an option the doctor was not given (``--compare-db``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from faultlab.doctor.ids import Ids
from faultlab.doctor.live import Live
from faultlab.doctor.openapi import Operation, is_collection_read
from faultlab.doctor.report import Checked, Finding, Report
from faultlab.names import BACKENDS, BackendName
from faultlab.plugins.observations import Where

__all__ = [
    "ANSWER_FINDINGS",
    "NO_DATABASE_READ",
    "NO_ENGINE",
    "NO_READ",
    "OPTIONS",
    "Check",
    "CheckupContext",
    "Exercised",
    "LoopProbe",
]

# The app's own errors: a read that made one says nothing about the pool.
ANSWER_FINDINGS = frozenset({"server error", "implicit IO"})
OPTIONS = frozenset({"compare_db"})  # the doctor's options a check may need (``Check.needs``)

# Why a check did not run and what to do about it, for the reasons several checks share.
NO_ENGINE = (
    "no SQLAlchemy engine was found in the app's modules (none, or more than one)",
    "name it with --engine MODULE:ENGINE; an app without one is watched by the operating system's count only",
)
NO_READ = "the doctor needs a collection read (a GET without parameters) that answers 2xx; fix its errors first"
NO_DATABASE_READ = (
    "give the app a collection read (a GET without parameters) that queries the database and answers 2xx "
    "(with credentials, if it needs them)"
)


@dataclass
class CheckupContext:
    """What a check gets to work with: the app (``live``) and where it was imported from, its OpenAPI document,
    the operations in the order they are sent, the report so far, and the options the doctor was given."""

    live: Live
    report: Report
    document: dict[str, Any]
    plan: list[Operation]
    target: str = ""  # MODULE:APP
    app_dir: Path = Path()
    options: dict[str, str] = field(default_factory=dict)  # by name, those given: compare_db
    created: object | None = None  # the first id a create (POST on a collection) answered with
    created_by: str | None = None  # ...and that create's label
    ids: Ids = field(default_factory=Ids)  # by collection: what creates answered with, what reads listed

    def healthy_reads(self) -> list[Operation]:
        """Collection reads that answered 2xx one at a time: only their failures at once say something about the
        pool (a route that always fails is a server error, already found; one that failed once rows existed too)."""
        fine = {c.operation for c in self.report.checked if c.statuses and all(200 <= s < 300 for s in c.statuses)}
        failing = {o for f in self.report.findings if f.kind in ANSWER_FINDINGS for o in f.operations}
        return [o for o in self.plan if is_collection_read(o) and not o.required and o.label in fine - failing]

    def database_reads(self) -> list[tuple[Operation, int]]:
        """Healthy collection reads whose request ran SQL (the harness's statement count), with how many
        statements: the pool's checks on a route that never touches the database (a health check) would pass
        whatever the pool does."""
        ran = {c.operation: c.statements[0] for c in self.report.checked if c.statements and c.statements[0] > 0}
        return [(o, ran[o.label]) for o in self.healthy_reads() if o.label in ran]


@dataclass(frozen=True)
class LoopProbe:
    """One timed request beside the loop's probe."""

    took_ms: float
    slowest_ms: float  # the slowest probe
    stalled_ms: float  # the time spent in probes slower than the stall threshold: the loop was held that long
    answered: int  # probes answered while the request ran
    idle_ms: float  # PostgreSQL: the longest one of the app's sessions sat idle in transaction meanwhile
    locked: bool  # whether another connection held the write lock meanwhile
    # PostgreSQL: the connections checked out of the app's pool while a session sat idle in transaction, and
    # where each was taken (the harness's sites, read once the idle had lasted ``exercise.IDLE_SITES_AFTER_S``)
    idle_sites: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Exercised:
    """One operation as the checkup exercised it: the record the report keeps, the exceptions the server
    raised meanwhile, and what the timed request saw beside the event loop's probe (``faultlab.doctor.exercise``)."""

    operation: Operation
    checked: Checked
    raised: list[str] = field(default_factory=list)
    raised_where: list[Where | None] = field(default_factory=list)  # the app's line of each, as far as seen
    raised_loading: list[dict[str, Any] | None] = field(default_factory=list)  # what the ORM loaded in each's request
    leak_sites: list[dict[str, Any]] = field(default_factory=list)  # connections still checked out, and where from
    timed: bool = False  # a delete is sent once, and not timed
    probe: LoopProbe | None = None  # the timed request beside the loop's probe
    item_id: object | None = None  # the id in its path, if it has one
    answered_meanwhile: int = 0  # probes the event loop answered while the timed request ran
    idle_ms: float = 0.0  # the longest one of the app's sessions sat idle in transaction meanwhile
    locked: bool = False  # whether another connection held the write lock meanwhile
    idle_sites: list[dict[str, Any]] = field(default_factory=list)  # ``LoopProbe.idle_sites``


class Check:
    """One check of the doctor. Every hook is optional; each runs with the garbage collector as it says."""

    name: ClassVar[str]
    backends: ClassVar[frozenset[BackendName]] = BACKENDS
    needs: ClassVar[tuple[str, ...]] = ()  # options it runs with (``compare_db``): without them it is not called
    # ``module:function`` the harness installs in the server when this check applies (``faultlab.inside.extensions``):
    # the routes under ``/_lab/`` it reads with ``ctx.live.ctx.harness(path)``; "" for none.
    inside: ClassVar[str] = ""

    def start(self, ctx: CheckupContext) -> None:
        """Before any operation is sent: note in ``ctx.report.not_checked`` why this check cannot run here."""

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        """After each operation was exercised (the collector off, then run once): what this check finds on it.
        ``found`` is what the checks before it found on this operation; a check may add its evidence to one."""
        return []

    def after_operations(self, ctx: CheckupContext) -> None:
        """Once every operation was exercised, the collector still off: a check that sends requests of its own."""

    def end(self, ctx: CheckupContext) -> None:
        """Last, with the collector back on, as in production."""
