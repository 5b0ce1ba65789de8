"""What a checkup records: each operation as it was exercised (``Checked``), what the checks found
(``Finding``), and the report that holds them with the checks that did not run (``Report``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from faultlab.doctor.verdict import NotRun, Verdict, judge, sentence

__all__ = ["Checked", "CheckupInterrupted", "Finding", "Location", "NotRun", "Report", "tally"]


@dataclass
class Checked:
    operation: str
    statuses: list[int]
    checked_out: list[int]  # after each request, once the server had finished it
    idle_in_transaction: list[int] = field(default_factory=list)  # PostgreSQL: its sessions in that state
    took_ms: float | None = None  # one more request, timed, with a cheap probe of the event loop beside it
    probe_max_ms: float | None = None
    stalled_ms: float | None = None  # the time probes spent waiting on a stalled loop meanwhile (``exercise``)
    probes_answered: int | None = None  # probes answered while it ran (before and after a stall too)
    idle_during_ms: float | None = None  # PostgreSQL: the longest a session sat idle in transaction meanwhile
    # SQL statements of its first request (a collection read's again once the creates made rows)
    statements: list[int] = field(default_factory=list)
    # The operating system's count (``Report.os_witness`` says of what): before, then after each request...
    os_open: list[int] = field(default_factory=list)
    os_after_collection: int | None = None  # ...and once the operation was done and the collector had run
    pool_open: list[int] = field(default_factory=list)  # the pool's open connections (in or out), as checked_out
    not_checked: str = ""  # why no check judged it (it answered 401 or 403 every time: no credentials it takes)


def tally(statuses: list[int]) -> str:
    """``200,200,200,500`` as ``200×3,500``: 48 answers at once read as one."""
    runs: list[list[int]] = []
    for status in statuses:
        if runs and runs[-1][0] == status:
            runs[-1][1] += 1
        else:
            runs.append([status, 1])
    return ",".join(f"{status}×{count}" if count > 1 else str(status) for status, count in runs)


@dataclass
class Location:
    """The line of the user's code a finding points to (``faultlab.inside.sites``), as the reports name it."""

    file: str  # as shown: relative to the app's directory when it is in it
    line: int
    function: str
    path: str = ""  # the file's absolute path, as the server imported it
    role: str = ""  # what happened there: "the session's dependency", "checked out here", ...

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


@dataclass
class Finding:
    kind: str
    operation: str
    evidence: str
    location: Location | None = None  # the line of the user's code that caused it, when the harness saw it
    operations: list[str] = field(default_factory=list)  # every operation this one cause affects
    unlocated: str = ""  # without a location: why no line of the user's code can be named (never a guess)

    def __post_init__(self) -> None:
        if not self.operations:
            self.operations = [self.operation]

    @property
    def where(self) -> str:
        """``at shop.py:12 in get_session`` (with what happened there), ``line: n/a (why)``, or ""."""
        if self.location is None:
            return f"line: n/a ({self.unlocated})" if self.unlocated else ""
        return f"at {self.location}" + (f" ({self.location.role})" if self.location.role else "")


@dataclass
class Report:
    target: str
    database: str
    checked: list[Checked] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[NotRun] = field(default_factory=list)  # checks that apply and did not run: incomplete
    interrupted: bool = False  # Ctrl+C or SIGTERM: what was found until then, the rest not checked
    not_applicable: list[NotRun] = field(default_factory=list)  # the other database's checks: no gap
    disagreements: list[Finding] = field(default_factory=list)  # where the pool and the OS saw otherwise
    os_witness: str = ""  # what the operating system's count counts ("" when it could not be read)
    openapi: str = ""  # where the OpenAPI document came from
    pool_route: str = ""  # the read the pool budget sent at once, and the SQL it runs
    probe_baseline_ms: float | None = None  # the loop's probe with the server idle: the median of 20
    # Which app, and where its data went (``faultlab.doctor.identity``); what was given, never a value of it.
    app_file: str = ""  # the file MODULE was loaded from, as the server imported it
    engine_url: str = ""  # the app's engine's URL, password hidden ("" when no engine was found)
    configured_db: bool = False  # --use-configured-db: the app ran on its own database, at the user's request
    python: str = ""  # the interpreter that served the app
    settings: list[str] = field(default_factory=list)  # the variables given with --env and --db-env, by name
    credentials: list[str] = field(default_factory=list)  # header names and the login step, without values
    setup: list[str] = field(default_factory=list)  # the set-up commands run before the app started

    @property
    def verdict(self) -> Verdict:
        return judge(findings=len(self.findings), not_run=len(self.not_checked), interrupted=self.interrupted)[0]

    @property
    def exit_code(self) -> int:
        return judge(findings=len(self.findings), not_run=len(self.not_checked), interrupted=self.interrupted)[1]

    @property
    def summary(self) -> str:
        return sentence(self.verdict, findings=len(self.findings), not_run=len(self.not_checked))

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "exit_code": self.exit_code, **asdict(self)}


class CheckupInterrupted(KeyboardInterrupt):
    """An interrupted checkup; carries its report so far, so that what was found is not lost."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.target)
        self.report = report
