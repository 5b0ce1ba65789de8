"""The one registry of what the lab can do (actions) and see (observations, from witnesses).

Every observation an experiment can name is declared once here, with its type, the backends where it
exists and the steps that produce it. The experiment schema (``lab.spec``), the runner, the judge and the
reports all read it, so a new action or witness is one module in ``lab/actions/`` or ``lab/witnesses/``:

    @register_witness
    class Pool(Witness):
        name = "pool"
        observations = (ObservationSpec("pool_checked_out", Kind.COUNT, "connections checked out"),)
        def observe(self, ctx): ...

A witness that cannot observe on this machine raises ``Unobservable``: its checks are "n/a", never a
pass or a fail.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from lab.domain import FLAGS, NON_NEGATIVE, TEXTS, WHOLE_NON_NEGATIVE, Domain

if TYPE_CHECKING:
    from lab.context import RunContext

__all__ = [
    "BACKENDS",
    "POSTGRESQL_ONLY",
    "SQLITE_ONLY",
    "Action",
    "BackendName",
    "Kind",
    "NoParams",
    "ObservationSpec",
    "Produced",
    "Unobservable",
    "Witness",
    "actions",
    "observation",
    "observations",
    "register_action",
    "register_observations",
    "register_witness",
    "witnesses",
]

BackendName = Literal["sqlite", "postgresql"]
BACKENDS: frozenset[BackendName] = frozenset({"sqlite", "postgresql"})
SQLITE_ONLY: frozenset[BackendName] = frozenset({"sqlite"})
POSTGRESQL_ONLY: frozenset[BackendName] = frozenset({"postgresql"})


class Kind(StrEnum):
    """The type of an observation, which decides the matchers an expectation may use on it."""

    COUNT = "count"  # an integer: equals, min, max
    NUMBER = "number"  # a float (seconds, milliseconds): min, max
    FLAG = "flag"  # true or false: equals
    TEXT = "text"  # equals, contains, not_contains
    SERIES = "series"  # numbers over a step: shown, not matched (match its _peak or the last value)
    TALLY = "tally"  # counts by key (statuses): shown, not matched (match ok, status, server_errors)


MATCHERS: dict[Kind, frozenset[str]] = {
    Kind.COUNT: frozenset({"equals", "min", "max"}),
    Kind.NUMBER: frozenset({"min", "max"}),
    Kind.FLAG: frozenset({"equals"}),
    Kind.TEXT: frozenset({"equals", "contains", "not_contains"}),
    Kind.SERIES: frozenset(),
    Kind.TALLY: frozenset(),
}

# The values each kind can take (an observation may narrow them: an HTTP status is 100-599). Series and
# tallies are not matched, so they need none.
DOMAINS: dict[Kind, Domain] = {
    Kind.COUNT: WHOLE_NON_NEGATIVE,
    Kind.NUMBER: NON_NEGATIVE,
    Kind.FLAG: FLAGS,
    Kind.TEXT: TEXTS,
}

# Which steps produce an observation: every step, request steps, request steps that sample after each
# request (sample_each), request steps with background load, or action steps.
Produced = Literal["any", "request", "sampled", "background", "action"]


@dataclass(frozen=True)
class ObservationSpec:
    name: str
    kind: Kind
    description: str
    produced: Produced = "any"
    backends: frozenset[BackendName] = BACKENDS
    source: str = ""  # the witness or step kind that produces it (filled in at registration)
    narrowed: Domain | None = None  # the values it can take, where its kind's are too wide

    @property
    def domain(self) -> Domain:
        return self.narrowed or DOMAINS[self.kind]


class Unobservable(Exception):
    """This witness cannot observe here (no /proc, no engine found): its checks are n/a, with this reason."""


class Witness:
    """Something that observes the server from outside (the OS, the database) or through the harness's
    shared memory. It must not send anything into the served process. Each run makes instances of its own
    (``witnesses()`` gives the classes), so two runs going at once share nothing.

    ``observe`` runs after every step. ``sampled`` names the observations ``sample`` can read cheaply: the
    runner reads them after each request of a ``sample_each`` step (giving ``<name>_series`` and
    ``<name>_peak``) and every 25 ms while any step runs (the step's timeline, and ``<name>_max_during``).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    backends: ClassVar[frozenset[BackendName]] = BACKENDS
    observations: ClassVar[tuple[ObservationSpec, ...]]
    sampled: ClassVar[tuple[str, ...]] = ()

    def before_step(self, ctx: RunContext) -> None:
        """Read what the step's observations are measured from (a counter's value before it), if anything."""

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        raise NotImplementedError

    def sample(self, ctx: RunContext) -> dict[str, int | float]:
        """The ``sampled`` observations now; raise ``Unobservable`` where they cannot be read."""
        raise Unobservable(f"{self.name} keeps no samples")

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        """This witness's observations in a few words each, for the terminal and the report."""
        return []


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Action:
    """Something a step does to the server or its database. One instance per run, so it can hold state
    (a lock, a connection) that ``cleanup`` releases at the end of the run, on errors and Ctrl+C too."""

    name: ClassVar[str]
    summary: ClassVar[str]
    backends: ClassVar[frozenset[BackendName]] = BACKENDS
    Params: ClassVar[type[BaseModel]] = NoParams
    # Done through the harness's HTTP routes, so it reaches the one worker that answers: refused at load
    # for a run with several workers, where it would act on one process and seem to act on all.
    one_process: ClassVar[bool] = False

    def label(self, params: Any) -> str:
        return self.summary

    def run(self, ctx: RunContext, params: Any) -> str:
        """Do it; return what was done, in words, for the report."""
        raise NotImplementedError

    def cleanup(self, ctx: RunContext) -> None:
        """Undo what must not outlive the run. Called once per run, whether or not ``run`` was."""


@dataclass
class _Registry:
    observations: dict[str, ObservationSpec] = field(default_factory=dict)
    witnesses: dict[str, type[Witness]] = field(default_factory=dict)
    actions: dict[str, type[Action]] = field(default_factory=dict)
    loaded: bool = False


_REGISTRY = _Registry()
PLUGIN_PACKAGES = ("lab.requests", "lab.witnesses", "lab.actions")


def register_observations(source: str, specs: Iterable[ObservationSpec], backends: frozenset[BackendName]) -> None:
    for spec in specs:
        if spec.name in _REGISTRY.observations:
            raise ValueError(
                f"observation {spec.name!r} is declared twice ({_REGISTRY.observations[spec.name].source})"
            )
        _REGISTRY.observations[spec.name] = replace(spec, source=source, backends=spec.backends & backends)


def register_witness(cls: type[Witness]) -> type[Witness]:
    specs = list(cls.observations)
    by_name = {spec.name: spec for spec in specs}
    for name in cls.sampled:
        base = by_name[name]
        specs.append(
            ObservationSpec(f"{name}_series", Kind.SERIES, f"{base.description}, after each request", "sampled")
        )
        specs.append(
            ObservationSpec(
                f"{name}_peak",
                base.kind,
                f"highest {base.description} after a request",
                "sampled",
                narrowed=base.narrowed,
            )
        )
        specs.append(
            ObservationSpec(
                f"{name}_max_during",
                base.kind,
                f"highest {base.description} while the step ran",
                narrowed=base.narrowed,
            )
        )
        specs.append(
            ObservationSpec(
                f"{name}_above_zero_s",
                Kind.NUMBER,
                f"the longest stretch, in seconds, with {base.description} above 0 while the step ran "
                "(a glimpse between two statements is ~0; a state held for the step is its length)",
            )
        )
    register_observations(cls.name, specs, cls.backends)
    _REGISTRY.witnesses[cls.name] = cls
    return cls


def register_action(cls: type[Action]) -> type[Action]:
    if cls.name in _REGISTRY.actions:
        raise ValueError(f"action {cls.name!r} is registered twice")
    _REGISTRY.actions[cls.name] = cls
    return cls


_LOADING = threading.RLock()  # reentrant: a plugin being imported may ask for the registry meanwhile


def _load() -> _Registry:
    with _LOADING:  # another thread (a run going alongside, lab.together) waits until the registry is whole
        if not _REGISTRY.loaded:
            _REGISTRY.loaded = True
            for package_name in PLUGIN_PACKAGES:
                package = importlib.import_module(package_name)
                for module in pkgutil.iter_modules(getattr(package, "__path__", [])):
                    importlib.import_module(f"{package_name}.{module.name}")
    return _REGISTRY


def observations() -> Mapping[str, ObservationSpec]:
    return _load().observations


def observation(name: str) -> ObservationSpec:
    return _load().observations[name]


def witnesses() -> Mapping[str, type[Witness]]:
    return _load().witnesses


def witnesses_needed(names: Iterable[str]) -> frozenset[str]:
    """The witnesses that make these observations (the step's own facts need none)."""
    known = _load()
    return frozenset(known.observations[name].source for name in names) & frozenset(known.witnesses)


def actions() -> Mapping[str, type[Action]]:
    return _load().actions


# What every step reports about itself, whatever the witnesses.
register_observations(
    "step",
    (
        ObservationSpec("action", Kind.TEXT, "what an action did, in words", "action"),
        ObservationSpec("duration_s", Kind.NUMBER, "wall time of the step's own work (observing excluded)"),
    ),
    BACKENDS,
)
