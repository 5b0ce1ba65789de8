"""The plugin contract: what a witness observes and an action does, as the registry (``registry``) checks
them. A plugin imports what it implements from here; nothing here builds anything or loads a plugin: the
decorators only mark a class, and ``registry.load_plugins()`` collects the marked classes (and the
``ObservationGroup`` values) of each plugin module, as pluggy collects the hook implementations of a module.

    @register_witness
    class Pool(Witness):
        name = "pool"
        title = "the pool (inside the server)"
        observations = (ObservationSpec("pool_checked_out", Kind.COUNT, "connections checked out"),)
        def observe(self, ctx): ...

A witness that cannot observe on this machine raises ``Unobservable``: its checks are "n/a", never a
pass or a fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from faultlab.errors import PluginError
from faultlab.names import BACKENDS, BackendName
from faultlab.plugins.domain import FLAGS, NON_NEGATIVE, TEXTS, WHOLE_NON_NEGATIVE, Domain

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext

__all__ = [
    "DOMAINS",
    "MATCHERS",
    "Action",
    "Kind",
    "NoParams",
    "ObservationGroup",
    "ObservationSpec",
    "Produced",
    "Unobservable",
    "Witness",
    "check_returned",
    "is_marked",
    "plugin_name",
    "register_action",
    "register_witness",
]


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


@dataclass(frozen=True)
class ObservationGroup:
    """Observations that a plugin module declares for something other than a witness (what a request step
    reports about itself, ``faultlab.actions.request``): a module-level value, collected when the module is."""

    source: str
    specs: tuple[ObservationSpec, ...]
    backends: frozenset[BackendName] = BACKENDS


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
    # Observations worth a chart in the HTML report, each with its title as a person names it (a sampled one
    # is drawn from its timeline, another from its value after each step).
    charts: ClassVar[tuple[tuple[str, str], ...]] = ()  # (observation, title)
    # Its part inside the served process, if it needs one (counters of its own that ``observe`` reads with
    # ``ctx.plugin_counters``): ``"package.module:function"``, called with a ``faultlab.inside.extensions.Inside``.
    inside: ClassVar[str | None] = None
    # It reads the fault proxy between the app and its database (``setup.network = "fault-proxy"``): made only in
    # the runs that have one, and its observations are refused in an experiment without it.
    needs_proxy: ClassVar[bool] = False

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
    # It stops or signals the database server itself: only on a server of the run's own (``setup.database =
    # "own-cluster"``, ``faultlab.backends.cluster``), reached as ``ctx.cluster``.
    needs_own_cluster: ClassVar[bool] = False
    # It switches the fault proxy's faults (``setup.network = "fault-proxy"``, ``faultlab.backends.proxy``),
    # reached as ``ctx.proxy``.
    needs_proxy: ClassVar[bool] = False
    # Its part inside the served process, if it needs one (routes under /_lab/ that ``run`` calls with
    # ``ctx.harness``): ``"package.module:function"``, called with a ``faultlab.inside.extensions.Inside``.
    inside: ClassVar[str | None] = None

    def label(self, params: Any) -> str:
        return self.summary

    def run(self, ctx: RunContext, params: Any) -> str:
        """Do it; return what was done, in words, for the report."""
        raise NotImplementedError

    def cleanup(self, ctx: RunContext) -> None:
        """Undo what must not outlive the run. Called once per run, whether or not ``run`` was."""


def plugin_name(cls: type) -> str:
    """How an error names a plugin: its class, with its module."""
    return f"{cls.__module__}.{cls.__qualname__}"


def check_returned(witness: Witness, what: str, returned: Mapping[str, Any], declared: Iterable[str]) -> None:
    """What ``observe`` or ``sample`` returned must be among what the witness declares (a typo would otherwise
    be a check that fails with "saw None" on every run); ``observe`` returns every observation that every
    step produces (one produced by request steps only may be left out of another step's)."""
    expected = set(declared)
    required = expected if what == "sample" else {s.name for s in witness.observations if s.produced == "any"}
    extra, missing = sorted(set(returned) - expected), sorted(required - set(returned))
    problems = [f"returned {', '.join(extra)}, which it does not declare"] if extra else []
    problems += [f"did not return {', '.join(missing)}"] if missing else []
    if problems:
        raise PluginError(f"witness {plugin_name(type(witness))}: {what}() {'; '.join(problems)}")


# The mark the decorators leave on a class: in its own namespace, so that a subclass is not registered by
# inheritance (it registers itself, with the decorator, if it is a plugin too).
_MARK = "__faultlab_plugin__"


def register_witness(cls: type[Witness]) -> type[Witness]:
    """Mark a witness for ``load_plugins``, which checks it against the contract and registers it. Nothing is
    registered at import: there is no process-wide registry to fill."""
    setattr(cls, _MARK, "witness")
    return cls


def register_action(cls: type[Action]) -> type[Action]:
    """Mark an action for ``load_plugins``, as ``register_witness`` marks a witness."""
    setattr(cls, _MARK, "action")
    return cls


def is_marked(value: object) -> bool:
    """A class that one of the decorators above marked itself (not one that inherits a mark)."""
    return isinstance(value, type) and _MARK in vars(value)
