"""An experiment's steps (pydantic): requests, actions from the registry, probes, and what each run expects
of them. Each expectation is checked at load: the observation exists, the step produces it, the matcher
fits its type, and some value of its domain can pass it and some can fail it (``faultlab.plugins.domain``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from faultlab.names import RunName
from faultlab.plugins.domain import Bounds
from faultlab.plugins.registry import MATCHERS, Kind, ObservationSpec, Produced, Registry

__all__ = [
    "ActionStepBase",
    "Background",
    "Expectations",
    "Match",
    "Matcher",
    "ProbeStep",
    "RequestStep",
    "Step",
    "Strict",
    "bounds_of",
    "matcher_problem",
    "step_type",
]


class Strict(BaseModel):
    # strict: `repeat = true` or `repeat = 2.5` is an error, not 1 or 2 (an integer still fills a float field).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Match(Strict):
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


class _StepBase(Strict):
    # The registry the step's model was built from (``step_type``): what it may expect, and its action.
    registry: ClassVar[Registry]
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
        known = self.registry.observations
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
            raise ValueError("\n".join(problems))  # one line each in the loader's report (faultlab.model.catalogue)
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


class Background(Strict):
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
        cls = self.registry.actions[self.action].Params
        return cls.model_validate(self.model_dump(include=set(cls.model_fields)))

    def label(self) -> str:
        return self.registry.actions[self.action]().label(self.params())


class ProbeStep(_StepBase):
    kind: Literal["probe"]

    def label(self) -> str:
        return "observe"


def step_type(registry: Registry) -> Any:
    """The type of one step: a request, a probe, or one model per registered action (its name as a tag, its
    parameters as fields), each bound to ``registry``. Built when the schema is (``faultlab.model.spec.schema``),
    never at import: a plugin may import this module at its top."""
    models = []
    for name, action in sorted(registry.actions.items()):
        fields: dict[str, Any] = {"action": (Literal[name], ...)}
        for field_name, info in action.Params.model_fields.items():
            fields[field_name] = (info.annotation, info)
        model_name = "".join(part.title() for part in name.split("_")) + "Step"
        models.append(_bound(registry, create_model(model_name, __base__=ActionStepBase, **fields)))
    request, probe = (_bound(registry, create_model(base.__name__, __base__=base)) for base in (RequestStep, ProbeStep))
    action_step: Any = Annotated[Union[tuple(models)], Field(discriminator="action")]  # noqa: UP007 - built at run time
    return Annotated[Union[request, action_step, probe], Field(discriminator="kind")]  # noqa: UP007


def _bound(registry: Registry, model: type[_StepBase]) -> type[_StepBase]:
    model.registry = registry
    return model


if TYPE_CHECKING:
    Step = RequestStep | ActionStepBase | ProbeStep
