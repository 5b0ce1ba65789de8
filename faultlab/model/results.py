"""What a run produced: steps with their evidence and checks, and the experiment's verdict (the journal)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from faultlab.exit_codes import ExitCode
from faultlab.model.spec import RunName
from faultlab.plugins.observations import Observation

__all__ = ["Baseline", "Check", "ExperimentResult", "RunResult", "StepResult", "Verdict"]


Outcome = Literal["pass", "fail", "n/a"]


class Check(BaseModel):
    observation: str
    expected: str
    observed: Any
    outcome: Outcome
    reason: str | None = Field(None, description="why a check is n/a: the witness could not observe here")
    step: int | None = Field(None, description="the step it checks, where it is listed apart from it (a baseline)")

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    @property
    def applies(self) -> bool:
        return self.outcome != "n/a"


class StepResult(BaseModel):
    number: int = Field(description="the step's number in the experiment file, 1-based")
    kind: Literal["request", "action", "probe"]
    label: str
    title: str | None = None
    note: str | None = None
    observation: Observation
    duration_s: float = Field(description="wall time of the step's own work, observation excluded")
    log_offset: int | None = Field(None, description="the size of the server's log as the step began, in bytes")
    checks: list[Check] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks if check.applies)


class RunResult(BaseModel):
    run: RunName
    variant: str
    status: Literal["completed", "error", "interrupted"] = "completed"
    error: str | None = None
    steps: list[StepResult] = Field(default_factory=list)
    started_at: datetime
    ended_at: datetime | None = None
    resources: dict[str, str] = Field(
        default_factory=dict, description="what the run created outside its temp dir (PostgreSQL database, role)"
    )

    @property
    def checks(self) -> list[Check]:
        return [check for step in self.steps for check in step.checks]

    @property
    def judged(self) -> bool:
        """At least one check could be made: a run whose every check was n/a proves nothing."""
        return any(check.applies for check in self.checks)

    @property
    def held(self) -> bool:
        """Every applicable expectation of this run was observed (and the run got to the end)."""
        return self.status == "completed" and self.judged and all(c.passed for c in self.checks if c.applies)


class Baseline(BaseModel):
    """One run's expectations judged against the other run's observations (``faultlab.model.validate``): they must fail
    somewhere, or they would pass whether the bug is there or not."""

    expected: RunName = Field(description="whose expectations")
    observed: RunName = Field(description="judged against which run's observations")
    checks: list[Check]

    @property
    def applicable(self) -> list[Check]:
        return [check for check in self.checks if check.applies]

    @property
    def tells_apart(self) -> bool:
        return any(check.outcome == "fail" for check in self.applicable)

    @property
    def held_on_both(self) -> list[Check]:
        """The expectations that held on the other run too: each passes with or without the bug."""
        return [check for check in self.applicable if check.passed]

    def held_text(self) -> str:
        """``step 1 status = 200, step 3 ok = 5``: what a reader must change to make the experiment prove something."""
        return ", ".join(f"step {check.step} {check.observation} {check.expected}" for check in self.held_on_both)

    def line(self) -> str:
        failed = sum(check.outcome == "fail" for check in self.applicable)
        what = f"the {self.expected} run's expectations on the {self.observed} run"
        if not self.applicable:
            return f"{what}: none could be checked (the steps that carry them run only in the {self.expected} run)"
        if self.tells_apart:
            return f"{what}: {failed} of {len(self.applicable)} fail, as they must"
        return f"{what}: all {len(self.applicable)} hold, so they cannot tell the fault from the fix"


class Verdict(StrEnum):
    AS_EXPECTED = "as expected"  # the fault reproduced, the fix held, and the checks told the two apart
    PROVES_NOTHING = "proves nothing"  # both runs held, but one run's checks hold on the other run too
    FAULT_NOT_REPRODUCED = "fault not reproduced"
    FIX_DID_NOT_HOLD = "fix did not hold"
    NEITHER = "fault not reproduced, fix did not hold"
    NOT_JUDGED = "not judged"  # no check could be made here: nothing was proven either way
    ERROR = "error"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        return {Verdict.AS_EXPECTED: ExitCode.OK, Verdict.INTERRUPTED: ExitCode.INTERRUPTED}.get(self, ExitCode.NOT_OK)


class ExperimentResult(BaseModel):
    name: str
    title: str
    backend: str = "sqlite"
    experiment_file: str
    versions: dict[str, str]
    started_at: datetime
    ended_at: datetime | None = None
    runs: dict[RunName, RunResult] = Field(default_factory=dict)
    verdict: Verdict = Verdict.INTERRUPTED
    report_dir: str | None = None
    report_problem: str | None = Field(None, description="why the report is not where it was asked for")
    kept_dir: str | None = Field(None, description="the run's temp dir, when kept with --keep")
    baselines: list[Baseline] = Field(
        default_factory=list, description="each run's expectations on the other run, when both runs held"
    )

    @property
    def tells_fault_from_fix(self) -> bool | None:
        """Whether each run's expectations fail on the other run; None when the runs did not both hold."""
        return all(baseline.tells_apart for baseline in self.baselines) if self.baselines else None

    def decide(self) -> Verdict:
        """The runs' verdict, before the baselines: ``faultlab.model.validate.conclude`` gives the experiment's."""
        statuses = {run.status for run in self.runs.values()}
        if "interrupted" in statuses or set(self.runs) != {"fault", "fix"}:
            return Verdict.INTERRUPTED
        if "error" in statuses:
            return Verdict.ERROR
        if not all(run.judged for run in self.runs.values()):
            return Verdict.NOT_JUDGED
        reproduced, held = self.runs["fault"].held, self.runs["fix"].held
        if reproduced and held:
            return Verdict.AS_EXPECTED
        if not reproduced and not held:
            return Verdict.NEITHER
        return Verdict.FIX_DID_NOT_HOLD if reproduced else Verdict.FAULT_NOT_REPRODUCED
