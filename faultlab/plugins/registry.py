"""The one registry of what the lab can do (actions) and see (observations, from witnesses), filled once from
an explicit list of built-in plugins and the ``faultlab.plugins`` entry points, each checked against the
contract (``contract``) as it registers. The experiment schema (``model.spec``), the runner, the judge, the
charts and the reports all read it, so a new action or witness is one module in ``faultlab/actions/`` or
``faultlab/witnesses/`` (or in a distribution of its own).
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, Literal

from faultlab.errors import PluginError
from faultlab.names import BACKENDS, POSTGRESQL_ONLY, SQLITE_ONLY, BackendName
from faultlab.plugins.contract import (
    DOMAINS,
    MATCHERS,
    Action,
    Kind,
    NoParams,
    ObservationSpec,
    Produced,
    Unobservable,
    Witness,
)

# The contract is re-exported: a plugin may import it from here, as the built-in ones do.
__all__ = [
    "BACKENDS",
    "BUILTIN_PLUGINS",
    "DOMAINS",
    "ENTRY_POINT_GROUP",
    "MATCHERS",
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
    "charted",
    "check_returned",
    "inside_parts",
    "observation",
    "observations",
    "register_action",
    "register_observations",
    "register_witness",
    "witnesses",
    "witnesses_needed",
]


@dataclass
class _Registry:
    observations: dict[str, ObservationSpec] = field(default_factory=dict)
    witnesses: dict[str, type[Witness]] = field(default_factory=dict)
    actions: dict[str, type[Action]] = field(default_factory=dict)
    state: Literal["empty", "loading", "loaded"] = "empty"


_REGISTRY = _Registry()
# The built-in plugins, in the order their observations and charts are shown: an explicit list, as pytest's
# default_plugins, not a scan of a directory. Other distributions add theirs through ENTRY_POINT_GROUP.
BUILTIN_PLUGINS = (
    "faultlab.actions.request",
    "faultlab.witnesses.pool",
    "faultlab.witnesses.sqlite_files",
    "faultlab.witnesses.postgres",
    "faultlab.witnesses.pg_queries",
    "faultlab.witnesses.proxy",
    "faultlab.witnesses.rows",
    "faultlab.witnesses.statements",
    "faultlab.witnesses.server_errors",
    "faultlab.actions.database_file",
    "faultlab.actions.gc",
    "faultlab.actions.lock",
    "faultlab.actions.migrate",
    "faultlab.actions.postgres",
    "faultlab.actions.cluster",
    "faultlab.actions.proxy",
    "faultlab.actions.server",
    "faultlab.actions.wait",
)
ENTRY_POINT_GROUP = "faultlab.plugins"  # each entry point names a module that registers what it brings
# A step's own fields: an action parameter of the same name would be unreachable (or would break loading).
STEP_FIELDS = frozenset({"kind", "action", "title", "only", "expect", "note"})


def _plugin_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_observations(source: str, specs: Iterable[ObservationSpec], backends: frozenset[BackendName]) -> None:
    for spec in specs:
        if spec.name in _REGISTRY.observations:
            also = _REGISTRY.observations[spec.name].source
            raise PluginError(f"{source}: observation {spec.name!r} is declared twice (also by {also})")
        _REGISTRY.observations[spec.name] = replace(spec, source=source, backends=spec.backends & backends)


def _verify_witness(cls: type[Witness]) -> None:
    """The contract a witness keeps, checked once, at registration; the error names the plugin and the rule."""
    where = _plugin_name(cls)
    for attribute in ("name", "title", "observations"):
        if not getattr(cls, attribute, None):
            raise PluginError(f"witness {where}: needs a {attribute}")
    if cls.name in _REGISTRY.witnesses:
        taken = _plugin_name(_REGISTRY.witnesses[cls.name])
        raise PluginError(f"witness {where}: the name {cls.name!r} is taken by {taken}")
    declared = {spec.name for spec in cls.observations}
    if unknown := sorted(set(cls.sampled) - declared):
        raise PluginError(f"witness {where}: sampled names {', '.join(unknown)}, which it does not observe")
    if cls.sampled and cls.sample is Witness.sample:
        raise PluginError(f"witness {where}: declares sampled = {cls.sampled!r} but has no sample() to read them")
    if cls.observe is Witness.observe:
        raise PluginError(f"witness {where}: has no observe()")
    if unknown := sorted({name for name, _ in cls.charts} - declared):
        raise PluginError(f"witness {where}: charts names {', '.join(unknown)}, which it does not observe")
    _verify_inside(f"witness {where}", cls.inside)


_INSIDE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _verify_inside(where: str, inside: str | None) -> None:
    """Named, not imported: the inside part runs in the server, with the app's imports, not the lab's."""
    if inside is not None and not _INSIDE.match(inside):
        raise PluginError(f"{where}: inside = {inside!r} must name a function as 'package.module:function'")


def register_witness(cls: type[Witness]) -> type[Witness]:
    _verify_witness(cls)
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
    where = _plugin_name(cls)
    for attribute in ("name", "summary"):
        if not getattr(cls, attribute, None):
            raise PluginError(f"action {where}: needs a {attribute}")
    if cls.name in _REGISTRY.actions:
        taken = _plugin_name(_REGISTRY.actions[cls.name])
        raise PluginError(f"action {where}: the name {cls.name!r} is taken by {taken}")
    _verify_inside(f"action {where}", cls.inside)
    if clash := sorted(STEP_FIELDS & set(cls.Params.model_fields)):
        raise PluginError(
            f"action {where}: its parameter {', '.join(clash)} has the name of a step's own field "
            f"({', '.join(sorted(STEP_FIELDS))}); rename it"
        )
    if cls.run is Action.run:
        raise PluginError(f"action {where}: has no run()")
    _REGISTRY.actions[cls.name] = cls
    return cls


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
        raise PluginError(f"witness {_plugin_name(type(witness))}: {what}() {'; '.join(problems)}")


_LOADING = threading.RLock()  # reentrant, so that a nested load from the same thread is caught, not a deadlock


def _load() -> _Registry:
    """Register the built-in plugins, then those of other distributions (entry points), once. Another thread
    (a run going alongside, faultlab.running.together) waits until the registry is whole; a plugin that asks for the
    registry while it is being loaded (something it imports at its top builds on it) is refused."""
    with _LOADING:
        if _REGISTRY.state == "loading":
            raise PluginError(
                "a plugin asked for the registry while the plugins were being loaded (at its module's top, or in "
                "something that runs there); ask for it inside the function that needs it"
            )
        if _REGISTRY.state == "empty":
            _REGISTRY.state = "loading"
            try:
                for module in BUILTIN_PLUGINS:
                    importlib.import_module(module)
                for entry_point in entry_points(group=ENTRY_POINT_GROUP):
                    try:
                        entry_point.load()
                    except PluginError:
                        raise
                    except Exception as exc:
                        raise PluginError(
                            f"plugin {entry_point.name} ({entry_point.value}, from the {ENTRY_POINT_GROUP} entry "
                            f"points) could not be loaded: {type(exc).__name__}: {exc}"
                        ) from exc
            except BaseException:
                _REGISTRY.state = "empty"
                raise
            _REGISTRY.state = "loaded"
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


def charted() -> dict[str, str]:
    """Every observation with a chart, and its title, in the plugins' order."""
    return {name: title for cls in _load().witnesses.values() for name, title in cls.charts}


# What every step reports about itself, whatever the witnesses.
register_observations(
    "step",
    (
        ObservationSpec("action", Kind.TEXT, "what an action did, in words", "action"),
        ObservationSpec("duration_s", Kind.NUMBER, "wall time of the step's own work (observing excluded)"),
    ),
    BACKENDS,
)


def inside_parts(witnesses: Iterable[Witness], actions: Iterable[str]) -> str:
    """The in-server parts of these witnesses and actions, for ``FAULTLAB_INSIDE``: only what the run uses."""
    known = _load()
    parts = [w.inside for w in witnesses] + [known.actions[name].inside for name in actions]
    return ",".join(dict.fromkeys(p for p in parts if p))
