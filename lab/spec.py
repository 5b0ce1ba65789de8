"""The experiment file's schema (pydantic): what a TOML file in ``experiments/`` may say.

Experiment files are data. They name a variant from ``faults/`` (or ``app``), actions and observations
from the registry (``lab.registry``); nothing in them is imported or evaluated, and no path in them leaves
the run's temp dir. Everything that can be checked before a run is checked here: an observation's name,
whether the step produces it, whether the matcher fits its type, and whether each run has a check that
applies on every backend the experiment lists.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from lab import registry
from lab.domain import Bounds
from lab.registry import MATCHERS, Kind, ObservationSpec, Produced
from lab.spec_types import RELATIVE_DIR, RUNS, BackendName, RunName

__all__ = [
    "RUNS",
    "ActionStep",
    "Experiment",
    "Learn",
    "Match",
    "Matcher",
    "Prediction",
    "ProbeStep",
    "Question",
    "RequestStep",
    "RunName",
    "RunSpec",
    "Step",
    "matcher_problem",
]

NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
# The command line's own words: an experiment of that name could never be run by it.
RESERVED_NAMES = frozenset({"all", "validate", "doctor", "fix", "check", "progress"})
# The lab sets these itself, and an experiment (data) must not be able to run code through them.
ENV_FORBIDDEN = re.compile(r"^(PYTHON.*|LD_.*|FAULTLAB_.*|UVICORN_.*|DATABASE_URL|PATH|HOME)$")


class _Strict(BaseModel):
    # strict: `repeat = true` or `repeat = 2.5` is an error, not 1 or 2 (an integer still fills a float field).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Match(_Strict):
    """A comparison against one observation; every bound given must hold."""

    equals: int | bool | str | None = None
    min: float | None = None
    max: float | None = None
    contains: str | None = None
    not_contains: str | None = None

    @model_validator(mode="after")
    def _something_to_check(self) -> Match:
        if not self.model_fields_set:
            raise ValueError("give at least one of equals, min, max, contains, not_contains")
        return self


# Smart-mode union: true stays a bool, 3 stays an int, a table becomes a Match.
Matcher = bool | int | str | Match
Expectations = dict[str, Matcher]

_BARE_TYPE = {Kind.COUNT: "a whole number", Kind.FLAG: "true or false", Kind.TEXT: "text in quotes"}


def _fits(kind: Kind, value: Any) -> bool:
    if kind is Kind.COUNT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Kind.FLAG:
        return isinstance(value, bool)
    return kind is Kind.TEXT and isinstance(value, str)


def matcher_problem(spec: ObservationSpec, matcher: Matcher) -> str | None:
    """Why ``matcher`` can never be checked against ``spec``'s observation, or None if it fits."""
    allowed = MATCHERS[spec.kind]
    if not allowed:
        hint = "its _peak" if spec.kind is Kind.SERIES else "ok, status or server_errors"
        return f"{spec.name} is a {spec.kind} and is not matched directly; match {hint} instead"
    used = matcher.model_fields_set if isinstance(matcher, Match) else {"equals"}
    if unfit := sorted(used - allowed):
        return f"{spec.name} is a {spec.kind}: use {', '.join(sorted(allowed))}, not {', '.join(unfit)}"
    value = matcher.equals if isinstance(matcher, Match) else matcher
    if "equals" in used and not _fits(spec.kind, value):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
        return f"{spec.name} is a {spec.kind}: expected {_BARE_TYPE[spec.kind]}, not {shown}"
    return spec.domain.problem(bounds_of(matcher))


def bounds_of(matcher: Matcher) -> Bounds:
    if not isinstance(matcher, Match):
        return Bounds(equals=matcher)
    given = matcher.model_dump(include=matcher.model_fields_set)
    return Bounds(**given)


class _StepBase(_Strict):
    title: str | None = Field(None, max_length=120)
    only: RunName | None = Field(None, description="run this step in one run only")
    expect: dict[RunName, Expectations] = Field(default_factory=dict)
    note: str | None = Field(None, description="a sentence for the report, under the step")

    def produces(self) -> frozenset[Produced]:
        return frozenset({"any"})

    @model_validator(mode="after")
    def _expectations_fit(self) -> _StepBase:
        if self.only is not None and set(self.expect) - {self.only}:
            raise ValueError(f"step runs only in the {self.only} run, so it can only expect.{self.only}")
        known = registry.observations()
        produced = self.produces()
        problems = []
        for run, checks in self.expect.items():
            unknown = sorted(set(checks) - set(known))
            if unknown:
                problems.append(
                    f"expect.{run} names no known observation: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
                )
            for name in sorted(set(checks) & set(known)):
                spec = known[name]
                if spec.produced not in produced:
                    problems.append(f"expect.{run}.{name}: {_not_produced(spec, self)}")
                elif problem := matcher_problem(spec, checks[name]):
                    problems.append(f"expect.{run}.{name}: {problem}")
        if problems:
            raise ValueError("\n".join(problems))  # one line each in the loader's report (lab.catalogue)
        return self

    def label(self) -> str:
        raise NotImplementedError


def _not_produced(spec: ObservationSpec, step: _StepBase) -> str:
    where = {
        "request": "request steps",
        "sampled": "request steps with sample_each = true",
        "background": "request steps with background load",
        "action": "action steps",
        "any": "every step",
    }[spec.produced]
    kind = getattr(step, "kind", "this")
    article = "an" if kind[:1] in "aeiou" else "a"
    return f"only {where} observe {spec.name}, not {article} {kind} step like this one"


class Background(_Strict):
    """Load that runs while a request step's own requests are sent and timed: ``clients`` at once, in a loop."""

    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"] = "GET"
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=200)]
    json_body: Any = Field(None, alias="json")
    clients: int = Field(1, ge=1, le=20)
    max_requests: int = Field(200, ge=1, le=2000, description="at most this many background requests in all")

    @field_validator("path")
    @classmethod
    def _not_the_harness(cls, path: str) -> str:
        return _not_harness(path)


def _not_harness(path: str) -> str:
    """Judge the path as the server will see it: uvicorn decodes percent-escapes, and dot segments move up."""
    route = unquote(path.split("?", 1)[0])
    segments = route.split("/")
    if "." in segments or ".." in segments or "%2f" in path.lower():
        raise ValueError("a path may not contain '.' or '..' segments or an encoded '/': write the path itself")
    if route == "/_lab" or route.startswith(("/_lab/", "/_lab?")):
        raise ValueError("/_lab/ is the lab's own; use an action step instead")
    return path


class RequestStep(_StepBase):
    kind: Literal["request"]
    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"] = "GET"
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=200)]
    json_body: Any = Field(None, alias="json")
    repeat: int = Field(1, ge=1, le=500)
    concurrency: int = Field(1, ge=1, le=50)
    interval_s: float = Field(0.0, ge=0, le=5, description="pause between sequential requests")
    sample_each: bool = Field(False, description="sample the witnesses after every request (sequential only)")
    timeout_s: float = Field(10.0, gt=0, le=60)
    background: Background | None = None

    @field_validator("path")
    @classmethod
    def _not_the_harness(cls, path: str) -> str:
        return _not_harness(path)

    @model_validator(mode="after")
    def _sampling_needs_sequence(self) -> RequestStep:
        if self.sample_each and self.concurrency != 1:
            raise ValueError("sample_each needs concurrency = 1 (one request at a time)")
        if self.interval_s and self.concurrency != 1:
            raise ValueError("interval_s needs concurrency = 1 (one request at a time)")
        if self.sample_each and self.background is not None:
            raise ValueError("sample_each samples once nothing is in flight, which background load never allows")
        return self

    def produces(self) -> frozenset[Produced]:
        produced: set[Produced] = {"any", "request"}
        if self.sample_each:
            produced.add("sampled")
        if self.background is not None:
            produced.add("background")
        return frozenset(produced)

    def label(self) -> str:
        text = f"{self.method} {self.path}"
        if self.repeat > 1:
            text += f" ×{self.repeat}"
            if self.concurrency > 1:
                text += f" ({self.concurrency} at a time)"
        if self.background is not None:
            text += f", while {self.background.clients} clients send {self.background.method} {self.background.path}"
        return text


class ActionStepBase(_StepBase):
    """An action from the registry; each action's own parameters are fields of its step (see ``_action_steps``)."""

    kind: Literal["action"]
    action: str

    def produces(self) -> frozenset[Produced]:
        return frozenset({"any", "action"})

    def params(self) -> BaseModel:
        cls = registry.actions()[self.action].Params
        return cls.model_validate(self.model_dump(include=set(cls.model_fields)))

    def label(self) -> str:
        return registry.actions()[self.action]().label(self.params())


class ProbeStep(_StepBase):
    kind: Literal["probe"]

    def label(self) -> str:
        return "observe"


def _action_steps() -> Any:
    """One step model per registered action: its name as a tag and its parameters as fields."""
    models = []
    for name, action in sorted(registry.actions().items()):
        fields: dict[str, Any] = {"action": (Literal[name], ...)}
        for field_name, info in action.Params.model_fields.items():
            fields[field_name] = (info.annotation, info)
        model_name = "".join(part.title() for part in name.split("_")) + "Step"
        models.append(create_model(model_name, __base__=ActionStepBase, **fields))
    return Annotated[Union[tuple(models)], Field(discriminator="action")]  # noqa: UP007 - built at run time


if TYPE_CHECKING:
    ActionStep = ActionStepBase
    Step = RequestStep | ActionStepBase | ProbeStep
else:
    ActionStep = _action_steps()
    Step = Annotated[Union[RequestStep, ActionStep, ProbeStep], Field(discriminator="kind")]  # noqa: UP007


class RunSpec(_Strict):
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


class Row(_Strict):
    title: str
    completed: bool = False


class Setup(_Strict):
    """The database the server starts on; by default none (the app creates it)."""

    migration: Literal["0001", "0002", "0003", "head"] | None = None
    rows: list[Row] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rows_need_a_schema(self) -> Setup:
        if self.rows and self.migration is None:
            raise ValueError("rows need a migration to insert them into")
        return self


class Explanation(_Strict):
    why: Annotated[str, Field(min_length=1, pattern=r"\S")]
    fix: Annotated[str, Field(min_length=1, pattern=r"\S")]
    remember: Annotated[str, Field(min_length=1, pattern=r"\S")]


_CODE_REF = re.compile(r"^(app|faults)(\.[a-z0-9_]+)*(:[A-Za-z_][A-Za-z0-9_]*)?$")


class CodeRefs(_Strict):
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


class Question(_Strict):
    """A self-check question ("explain it") and its answer, shown once the learner's fix passes."""

    ask: Annotated[str, Field(min_length=1, max_length=300)]
    answer: Annotated[str, Field(min_length=1, max_length=2000)]


class Prediction(_Strict):
    """Asked before a run ("predict before you run"); the answer is shown beside what ``step`` of ``run`` saw."""

    ask: Annotated[str, Field(min_length=1, max_length=300)]
    step: int = Field(ge=1, le=100)
    run: RunName = "fault"


_LEARNER_FILE = r"^[a-z][a-z0-9_]*\.py$"


class Learn(_Strict):
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


class Experiment(_Strict):
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
        "the script measures time that a second server on the same cores could change (lab.together)",
    )

    @field_validator("name")
    @classmethod
    def _not_a_command(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(
                f"{name!r} is a word of the command line ({', '.join(sorted(RESERVED_NAMES))}); choose another name"
            )
        return name

    def server_starts(self) -> int:
        """How many servers its runs start: one each, and one more for each restart."""
        return sum(
            1
            + sum(
                isinstance(s, ActionStepBase) and registry.actions()[s.action].starts_server
                for _, s in self.steps_for(run)
            )
            for run in RUNS
        )

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
        actions = registry.actions()
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
    def _one_process_actions_need_one_worker(self) -> Experiment:
        actions = registry.actions()
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
        known = registry.observations()
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
