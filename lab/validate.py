"""Does an experiment tell the fault from the fix? Its baselines, as a mutation tester would run them.

The fault run's expectations are judged against what the fix run observed, and the fix run's against the
fault run: each must fail somewhere. An experiment whose expectations also hold on the other run passes
whether the bug is there or not, and proves nothing. Both runs are already recorded step by step, so the
baselines cost no further server.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.judge import judge
from lab.results import Check, ExperimentResult, Verdict
from lab.spec import Experiment, RunName

__all__ = ["Baseline", "baselines"]


@dataclass(frozen=True)
class Baseline:
    expected: RunName  # whose expectations
    observed: RunName  # judged against which run's observations
    checks: list[Check]

    @property
    def applicable(self) -> list[Check]:
        return [check for check in self.checks if check.applies]

    @property
    def tells_apart(self) -> bool:
        return any(check.outcome == "fail" for check in self.applicable)

    def line(self) -> str:
        failed = sum(check.outcome == "fail" for check in self.applicable)
        what = f"the {self.expected} run's expectations on the {self.observed} run"
        if not self.applicable:
            return f"{what}: none could be checked (the steps that carry them run only in the {self.expected} run)"
        if self.tells_apart:
            return f"{what}: {failed} of {len(self.applicable)} fail, as they must"
        return f"{what}: all {len(self.applicable)} hold, so they cannot tell the fault from the fix"


def baselines(result: ExperimentResult, experiment: Experiment) -> list[Baseline]:
    """Both baselines of a run that behaved as expected (for any other verdict there is nothing to compare)."""
    if result.verdict is not Verdict.AS_EXPECTED:
        return []
    found = []
    pairs: tuple[tuple[RunName, RunName], ...] = (("fault", "fix"), ("fix", "fault"))
    for expected, observed in pairs:
        steps = {step.number: step for step in result.runs[observed].steps}
        checks: list[Check] = []
        for number, step in experiment.steps_for(expected):
            if number in steps and expected in step.expect:
                checks += judge(step.expect[expected], steps[number].observation, backend=result.backend)
        found.append(Baseline(expected, observed, checks))
    return found
