"""The experiment file's schema (pydantic): what a TOML file in ``experiments/`` may say.

Experiment files are data. They name a variant from ``faults/`` (or ``app``) and the built-in steps;
nothing in them is imported or evaluated, and no path in them leaves the run's temp dir.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab.observations import OBSERVABLE

__all__ = [
    "RUNS",
    "ActionStep",
    "Experiment",
    "Matcher",
    "ProbeStep",
    "RequestStep",
    "RunName",
    "Step",
]

RunName = Literal["fault", "fix"]
RUNS: tuple[RunName, ...] = ("fault", "fix")
NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ENV_ALLOWED = frozenset({"DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class _StepBase(_Strict):
    title: str | None = Field(None, max_length=120)
    only: RunName | None = Field(None, description="run this step in one run only")
    expect: dict[RunName, Expectations] = Field(default_factory=dict)
    note: str | None = Field(None, description="a sentence for the report, under the step")

    @field_validator("expect")
    @classmethod
    def _known_observations(cls, expect: dict[RunName, Expectations]) -> dict[RunName, Expectations]:
        for run, checks in expect.items():
            unknown = sorted(set(checks) - OBSERVABLE)
            if unknown:
                raise ValueError(
                    f"expect.{run} names no known observation: {', '.join(unknown)} "
                    f"(known: {', '.join(sorted(OBSERVABLE))})"
                )
        return expect

    @model_validator(mode="after")
    def _expect_only_where_run(self) -> _StepBase:
        if self.only is not None and set(self.expect) - {self.only}:
            raise ValueError(f"step runs only in the {self.only} run, so it can only expect.{self.only}")
        return self


class RequestStep(_StepBase):
    kind: Literal["request"]
    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"] = "GET"
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=200)]
    json_body: Any = Field(None, alias="json")
    repeat: int = Field(1, ge=1, le=500)
    concurrency: int = Field(1, ge=1, le=50)
    sample_each: bool = Field(False, description="sample pool and fds after every request (sequential only)")
    timeout_s: float = Field(10.0, gt=0, le=60)

    @field_validator("path")
    @classmethod
    def _not_the_harness(cls, path: str) -> str:
        if path.startswith("/_lab/"):
            raise ValueError("/_lab/ is the lab's own probe; use a probe or action step instead")
        return path

    @model_validator(mode="after")
    def _sampling_needs_sequence(self) -> RequestStep:
        if self.sample_each and self.concurrency != 1:
            raise ValueError("sample_each needs concurrency = 1 (one request at a time)")
        return self

    def label(self) -> str:
        text = f"{self.method} {self.path}"
        if self.repeat > 1:
            text += f" ×{self.repeat}"
            if self.concurrency > 1:
                text += f" ({self.concurrency} at a time)"
        return text


_ACTION_LABELS = {
    "delete_db": "delete the database file",
    "restart": "restart the server",
    "migrate": "alembic upgrade head",
    "gc_collect": "gc.collect()",
    "gc_disable": "gc.disable()",
    "gc_enable": "gc.enable()",
}


class ActionStep(_StepBase):
    kind: Literal["action"]
    action: Literal["delete_db", "restart", "migrate", "gc_collect", "gc_disable", "gc_enable", "wait"]
    seconds: float | None = Field(None, gt=0, le=30, description="for wait")

    @model_validator(mode="after")
    def _wait_needs_seconds(self) -> ActionStep:
        if (self.action == "wait") != (self.seconds is not None):
            raise ValueError("seconds is required by the wait action and only by it")
        return self

    def label(self) -> str:
        if self.action == "wait":
            return f"wait {self.seconds:g} s"
        return _ACTION_LABELS[self.action]


class ProbeStep(_StepBase):
    kind: Literal["probe"]

    def label(self) -> str:
        return "probe"


Step = Annotated[RequestStep | ActionStep | ProbeStep, Field(discriminator="kind")]


class RunSpec(_Strict):
    variant: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _only_pool_settings(cls, env: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(env) - ENV_ALLOWED)
        if unknown:
            raise ValueError(f"env may set only {', '.join(sorted(ENV_ALLOWED))}; not {', '.join(unknown)}")
        return env


class Row(_Strict):
    title: str
    completed: bool = False


class Setup(_Strict):
    """The database the server starts on; by default none (the app creates it)."""

    migration: Literal["0001", "0002", "head"] | None = None
    rows: list[Row] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rows_need_a_schema(self) -> Setup:
        if self.rows and self.migration is None:
            raise ValueError("rows need a migration to insert them into")
        return self


class Explanation(_Strict):
    why: str
    fix: str
    remember: str


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


class Experiment(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=40)]
    title: Annotated[str, Field(min_length=1, max_length=100)]
    backends: tuple[Literal["sqlite", "postgresql"], ...] = Field(("sqlite",), min_length=1)
    fault: RunSpec
    fix: RunSpec
    setup: Setup = Field(default_factory=Setup)
    steps: list[Step] = Field(min_length=1, max_length=100)
    explain: Explanation
    code: CodeRefs = Field(default_factory=CodeRefs)

    @model_validator(mode="after")
    def _file_actions_need_sqlite(self) -> Experiment:
        if "postgresql" in self.backends:
            for number, step in enumerate(self.steps, 1):
                if isinstance(step, ActionStep) and step.action == "delete_db":
                    raise ValueError(f"steps[{number}]: delete_db needs a database file: list only sqlite in backends")
        return self

    @model_validator(mode="after")
    def _every_run_is_judged(self) -> Experiment:
        for run in RUNS:
            if not any(run in step.expect for step in self.steps):
                raise ValueError(f"no step has expect.{run}: a run that expects nothing proves nothing")
        return self

    def steps_for(self, run: RunName) -> list[tuple[int, Step]]:
        """The steps of one run, numbered as in the file (1-based), so both runs line up in the report."""
        return [(i, step) for i, step in enumerate(self.steps, 1) if step.only in (None, run)]
