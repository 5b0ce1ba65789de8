"""Does an experiment tell the fault from the fix? Its baselines, as a mutation tester would run them.

The fault run's expectations are judged against what the fix run observed, and the fix run's against the
fault run: each must fail somewhere. An experiment whose expectations also hold on the other run passes
whether the bug is there or not, and proves nothing. Both runs are already recorded step by step, so the
baselines cost no further server.
"""

from __future__ import annotations

from faultlab.model.judge import judge
from faultlab.model.results import Baseline, Check, ExperimentResult, RunResult, Verdict
from faultlab.model.spec import Experiment, RunName
from faultlab.plugins.registry import Registry

__all__ = ["baseline", "baselines", "conclude"]


def conclude(registry: Registry, result: ExperimentResult, experiment: Experiment) -> None:
    """The verdict, baselines included: "as expected" only when each run's expectations fail somewhere on the
    other run; both runs holding is otherwise "proves nothing"."""
    result.verdict = result.decide()
    result.baselines = baselines(registry, result, experiment)
    if result.tells_fault_from_fix is False:
        result.verdict = Verdict.PROVES_NOTHING


def baselines(registry: Registry, result: ExperimentResult, experiment: Experiment) -> list[Baseline]:
    """Both baselines of runs that both held (for any other verdict there is nothing to compare)."""
    if result.verdict is not Verdict.AS_EXPECTED:
        return []
    return [
        baseline(registry, experiment, "fault", result.runs["fix"], result.backend),
        baseline(registry, experiment, "fix", result.runs["fault"], result.backend),
    ]


def baseline(
    registry: Registry, experiment: Experiment, expected: RunName, observed: RunResult, backend: str
) -> Baseline:
    """``expected``'s expectations judged against the steps of another run (``observed``)."""
    steps = {step.number: step for step in observed.steps}
    checks: list[Check] = []
    for number, step in experiment.steps_for(expected):
        if number in steps and expected in step.expect:
            judged = judge(registry, step.expect[expected], steps[number].observation, backend=backend)
            checks += [check.model_copy(update={"step": number}) for check in judged]
    return Baseline(expected=expected, observed=observed.run, checks=checks)
