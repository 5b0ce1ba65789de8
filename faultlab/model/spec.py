"""The experiment file's schema (pydantic): what a TOML file in ``experiments/`` may say.

Experiment files are data. They name a variant from ``faults/`` (or ``app``), actions and observations
from a registry (``faultlab.plugins.registry``), which ``schema(registry)`` builds the model from; nothing in
them is imported or evaluated, and no path in them leaves the run's temp dir. Everything that can be checked
before a run is checked here: an observation's name, whether the step produces it, whether the matcher fits its
type, and whether each run has a check that applies on every backend the experiment lists.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, create_model, field_validator, model_validator

from faultlab.model.setup import Row, Setup, setup_problem
from faultlab.model.steps import (
    ActionStepBase,
    Match,
    Matcher,
    ProbeStep,
    RequestStep,
    Strict,
    matcher_problem,
    step_type,
)
from faultlab.names import RELATIVE_DIR, RUNS, BackendName, RunName
from faultlab.plugins.registry import Registry

if TYPE_CHECKING:
    from faultlab.model.steps import Step

# The steps' names are re-exported: the schema is one thing to its readers.
__all__ = [
    "RUNS",
    "ActionStepBase",
    "Experiment",
    "Learn",
    "Match",
    "Matcher",
    "Prediction",
    "ProbeStep",
    "Question",
    "RequestStep",
    "Row",
    "RunName",
    "RunSpec",
    "Setup",
    "matcher_problem",
    "schema",
]

NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
# The command line's own words: an experiment of that name could never be run by it.
RESERVED_NAMES = frozenset({"all", "run", "validate", "list", "doctor", "fix", "check", "progress"})
# The lab sets these itself, and an experiment (data) must not be able to run code through them.
ENV_FORBIDDEN = re.compile(r"^(PYTHON.*|LD_.*|FAULTLAB_.*|UVICORN_.*|DATABASE_URL|PATH|HOME)$")


class RunSpec(Strict):
    variant: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?$")]
    env: dict[str, str] = Field(default_factory=dict, description="the server's environment, on top of the lab's")
    cwd: Annotated[str, Field(pattern=RELATIVE_DIR)] | None = Field(
        None, description="the server's working directory, inside the run's temp dir"
    )
    workers: int = Field(1, ge=1, le=4, description="uvicorn worker processes")

    @field_validator("env")
    @classmethod
    def _no_code_through_env(cls, env: dict[str, str]) -> dict[str, str]:
        refused = sorted(name for name in env if ENV_FORBIDDEN.match(name) or not re.match(r"^[A-Z][A-Z0-9_]*$", name))
        if refused:
            raise ValueError(
                f"env may not set {', '.join(refused)} (the lab sets DATABASE_URL, FAULTLAB_* and uvicorn's "
                "options; PYTHON*, LD_*, PATH and HOME could run code); use upper-case names such as DB_POOL_TIMEOUT"
            )
        return env


class Explanation(Strict):
    why: Annotated[str, Field(min_length=1, pattern=r"\S")]
    fix: Annotated[str, Field(min_length=1, pattern=r"\S")]
    remember: Annotated[str, Field(min_length=1, pattern=r"\S")]


_CODE_REF = re.compile(r"^(app|faults)(\.[a-z0-9_]+)*(:[A-Za-z_][A-Za-z0-9_]*)?$")


class CodeRefs(Strict):
    """What the report shows side by side: ``module`` or ``module:object`` inside this project."""

    fault: str | None = None
    fix: str | None = None

    @field_validator("fault", "fix")
    @classmethod
    def _inside_the_project(cls, reference: str | None) -> str | None:
        if reference is not None and not _CODE_REF.match(reference):
            raise ValueError(
                f"{reference!r} is not code of this project; name a module of app/ or faults/, optionally "
                "with a function or class (e.g. 'faults.missing_yield' or 'app.database:get_db')"
            )
        return reference


class Question(Strict):
    """A self-check question ("explain it") and its answer, shown once the learner's fix passes."""

    ask: Annotated[str, Field(min_length=1, max_length=300)]
    answer: Annotated[str, Field(min_length=1, max_length=2000)]


class Prediction(Strict):
    """Asked before a run ("predict before you run"); the answer is shown beside what ``step`` of ``run`` saw."""

    ask: Annotated[str, Field(min_length=1, max_length=300)]
    step: int = Field(ge=1, le=100)
    run: RunName = "fault"


_LEARNER_FILE = r"^[a-z][a-z0-9_]*\.py$"


class Learn(Strict):
    """``[learn]``: the learner's own fix. ``starter`` (a module of faults/) is copied into the workspace as
    ``file``, and ``check`` serves that file in the fix run; without a starter the task is to predict."""

    task: Annotated[str, Field(min_length=1, max_length=4000)]
    file: Annotated[str, Field(pattern=_LEARNER_FILE, max_length=40)] | None = None
    starter: Annotated[str, Field(pattern=r"^faults\.[a-z0-9_]+$")] | None = None
    solution: Annotated[str, Field(pattern=_CODE_REF.pattern)] | None = None
    hints: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(min_length=1, max_length=5)
    questions: list[Question] = Field(min_length=1, max_length=6)
    predict: list[Prediction] = Field(default_factory=list, max_length=4)

    @model_validator(mode="after")
    def _a_file_or_predictions(self) -> Learn:
        code = [self.file, self.starter, self.solution]
        if any(part is None for part in code) and any(part is not None for part in code):
            raise ValueError("a code task needs file, starter and solution together")
        if self.starter is None and not self.predict:
            raise ValueError("a task without code (no starter) must ask the learner to predict: give predict")
        return self


class Experiment(Strict):
    """An experiment file, validated: the shape of the model ``schema(registry)`` builds (steps of its actions)."""

    registry: ClassVar[Registry]  # the registry its model was built from: what its steps may do and expect
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=40)]
    title: Annotated[str, Field(min_length=1, max_length=100)]
    backends: tuple[BackendName, ...] = Field(("sqlite",), min_length=1, strict=False)  # a TOML array is a list
    fault: RunSpec
    fix: RunSpec
    setup: Setup = Field(default_factory=Setup)
    steps: list[Step] = Field(min_length=1, max_length=100)
    explain: Explanation
    code: CodeRefs = Field(default_factory=CodeRefs)
    learn: Learn | None = None
    together: bool = Field(
        False,
        description="the fault run and the fix run may go at the same time, each on its own server: nothing in "
        "the script measures time that a second server on the same cores could change (faultlab.running.together)",
    )

    @field_validator("name")
    @classmethod
    def _not_a_command(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(
                f"{name!r} is a word of the command line ({', '.join(sorted(RESERVED_NAMES))}); choose another name"
            )
        return name

    @model_validator(mode="after")
    def _predictions_name_steps_of_their_run(self) -> Experiment:
        for number, prediction in enumerate(self.learn.predict if self.learn else [], 1):
            steps = dict(self.steps_for(prediction.run))
            if prediction.step not in steps:
                raise ValueError(
                    f"learn.predict[{number}]: the {prediction.run} run has no step {prediction.step} "
                    f"(its steps: {', '.join(map(str, steps))})"
                )
        return self

    @model_validator(mode="after")
    def _actions_exist_on_every_backend(self) -> Experiment:
        actions = self.registry.actions
        for number, step in enumerate(self.steps, 1):
            if isinstance(step, ActionStepBase):
                missing = sorted(set(self.backends) - actions[step.action].backends)
                if missing:
                    raise ValueError(
                        f"steps[{number}]: {step.action} cannot run on {', '.join(missing)}; "
                        f"list only {', '.join(sorted(actions[step.action].backends))} in backends"
                    )
        return self

    @model_validator(mode="after")
    def _setup_fits_the_steps(self) -> Experiment:
        if problem := setup_problem(self.registry, self.setup, self.backends, self.together, self.steps):
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _one_process_actions_need_one_worker(self) -> Experiment:
        actions = self.registry.actions
        for run in RUNS:
            workers = getattr(self, run).workers
            for number, step in self.steps_for(run):
                if workers > 1 and isinstance(step, ActionStepBase) and actions[step.action].one_process:
                    raise ValueError(
                        f"steps[{number}]: {step.action} reaches only the worker that answers it, and the {run} "
                        f"run has {workers} workers; use workers = 1 for it"
                    )
        return self

    @model_validator(mode="after")
    def _every_run_is_judged_everywhere(self) -> Experiment:
        """A run with no check that can apply proves nothing: each run needs one on each backend listed."""
        known = self.registry.observations
        for run in RUNS:
            for backend in self.backends:
                if not any(
                    backend in known[name].backends
                    for step in self.steps
                    if step.only in (None, run)
                    for name in step.expect.get(run, {})
                ):
                    raise ValueError(
                        f"no step has an expect.{run} that applies on {backend}: a run that checks nothing "
                        "proves nothing"
                    )
        return self

    def observations_checked(self) -> frozenset[str]:
        """Every observation some expectation of either run names: what the fewest witnesses must still see."""
        return frozenset(name for step in self.steps for checks in step.expect.values() for name in checks)

    def steps_for(self, run: RunName) -> list[tuple[int, Step]]:
        """The steps of one run, numbered as in the file (1-based), so both runs line up in the report."""
        return [(i, step) for i, step in enumerate(self.steps, 1) if step.only in (None, run)]


_SCHEMA = threading.Lock()
_SCHEMAS: dict[Registry, type[Experiment]] = {}  # one model per registry (a process loads one; tests, a few)


def schema(registry: Registry) -> type[Experiment]:
    """The experiment model of ``registry``: its steps' type built from the registry's actions, its checks read
    its observations. Built the first time it is asked for, never when a module is imported."""
    with _SCHEMA:
        if (model := _SCHEMAS.get(registry)) is None:
            steps: Any = (list[step_type(registry)], Field(min_length=1, max_length=100))  # type: ignore[misc]
            model = create_model("Experiment", __base__=Experiment, __module__=__name__, steps=steps)
            model.registry = registry
            _SCHEMAS[registry] = model
    return model
