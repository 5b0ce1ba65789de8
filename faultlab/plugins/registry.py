"""The registry of what the lab can do (actions) and see (observations, from witnesses): a ``Registry``
object, built by ``load_plugins()`` from an explicit list of built-in plugins and the ``faultlab.plugins``
entry points, each checked against the contract (``contract``) as it registers. The experiment schema
(``model.spec.schema(registry)``), the runner, the judge, the charts, the reports, learn and the doctor take
the registry as an argument; the command line loads it once and passes it down. Nothing is registered at
import: a plugin module only marks its classes (``register_witness``, ``register_action``) and declares its
other observations (``ObservationGroup``); ``load_plugins`` imports the module and collects them, as pluggy
collects hook implementations. A new action or witness is one module in ``faultlab/actions/`` or
``faultlab/witnesses/`` (or in a distribution of its own).
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType, ModuleType

from faultlab.errors import PluginError
from faultlab.names import BACKENDS, POSTGRESQL_ONLY, SQLITE_ONLY, BackendName
from faultlab.plugins.contract import (
    DOMAINS,
    MATCHERS,
    Action,
    Kind,
    NoParams,
    ObservationGroup,
    ObservationSpec,
    Produced,
    Unobservable,
    Witness,
    check_returned,
    is_marked,
    plugin_name,
    register_action,
    register_witness,
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
    "ObservationGroup",
    "ObservationSpec",
    "Produced",
    "Registry",
    "Unobservable",
    "Witness",
    "check_returned",
    "load_plugins",
    "register_action",
    "register_witness",
]

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
ENTRY_POINT_GROUP = "faultlab.plugins"  # each entry point names a plugin module (or one marked class)
# A step's own fields: an action parameter of the same name would be unreachable (or would break loading).
STEP_FIELDS = frozenset({"kind", "action", "title", "only", "expect", "note"})


# What every step reports about itself, whatever the witnesses.
STEP_OBSERVATIONS = ObservationGroup(
    "step",
    (
        ObservationSpec("action", Kind.TEXT, "what an action did, in words", "action"),
        ObservationSpec("duration_s", Kind.NUMBER, "wall time of the step's own work (observing excluded)"),
    ),
)
_INSIDE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _derived(cls: type[Witness]) -> list[ObservationSpec]:
    """A witness's observations, and for each sampled one those the runner derives from its samples."""
    specs = list(cls.observations)
    by_name = {spec.name: spec for spec in specs}
    for name in cls.sampled:
        base = by_name[name]
        specs += [
            ObservationSpec(f"{name}_series", Kind.SERIES, f"{base.description}, after each request", "sampled"),
            ObservationSpec(
                f"{name}_peak", base.kind, f"highest {base.description} after a request", "sampled",
                narrowed=base.narrowed,
            ),
            ObservationSpec(
                f"{name}_max_during", base.kind, f"highest {base.description} while the step ran",
                narrowed=base.narrowed,
            ),
            ObservationSpec(
                f"{name}_above_zero_s",
                Kind.NUMBER,
                f"the longest stretch, in seconds, with {base.description} above 0 while the step ran "
                "(a glimpse between two statements is ~0; a state held for the step is its length)",
            ),
        ]  # fmt: skip
    return specs


def _verify_inside(where: str, inside: str | None) -> None:
    """Named, not imported: the inside part runs in the server, with the app's imports, not the lab's."""
    if inside is not None and not _INSIDE.match(inside):
        raise PluginError(f"{where}: inside = {inside!r} must name a function as 'package.module:function'")


class Registry:
    """The actions, witnesses and observations of one ``load_plugins()``, in the order they registered. Each
    ``add_*`` checks the contract first and changes nothing when it refuses (the error names the plugin and
    the rule). Read-only views of what it holds: ``observations``, ``witnesses``, ``actions``."""

    def __init__(self) -> None:
        self._observations: dict[str, ObservationSpec] = {}
        self._witnesses: dict[str, type[Witness]] = {}
        self._actions: dict[str, type[Action]] = {}
        self._groups: set[int] = set()  # a group another module imported is the same group, added once
        self.add_observations(STEP_OBSERVATIONS)

    @property
    def observations(self) -> Mapping[str, ObservationSpec]:
        return MappingProxyType(self._observations)

    @property
    def witnesses(self) -> Mapping[str, type[Witness]]:
        return MappingProxyType(self._witnesses)

    @property
    def actions(self) -> Mapping[str, type[Action]]:
        return MappingProxyType(self._actions)

    # -- registering -------------------------------------------------------------------------------------
    def add_observations(self, group: ObservationGroup) -> None:
        if id(group) not in self._groups:
            self._add_specs(group.source, group.specs, group.backends)
            self._groups.add(id(group))

    def _add_specs(self, source: str, specs: Iterable[ObservationSpec], backends: frozenset[BackendName]) -> None:
        specs = list(specs)
        seen: dict[str, str] = {name: spec.source for name, spec in self._observations.items()}
        for spec in specs:
            if spec.name in seen:
                raise PluginError(f"{source}: observation {spec.name!r} is declared twice (also by {seen[spec.name]})")
            seen[spec.name] = source
        for spec in specs:
            self._observations[spec.name] = replace(spec, source=source, backends=spec.backends & backends)

    def add_witness(self, cls: type[Witness]) -> None:
        self._verify_witness(cls)
        self._add_specs(cls.name, _derived(cls), cls.backends)
        self._witnesses[cls.name] = cls

    def _verify_witness(self, cls: type[Witness]) -> None:
        """The contract a witness keeps, checked once, at registration; the error names the plugin and the rule."""
        where = plugin_name(cls)
        for attribute in ("name", "title", "observations"):
            if not getattr(cls, attribute, None):
                raise PluginError(f"witness {where}: needs a {attribute}")
        if cls.name in self._witnesses:
            raise PluginError(
                f"witness {where}: the name {cls.name!r} is taken by {plugin_name(self._witnesses[cls.name])}"
            )
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

    def add_action(self, cls: type[Action]) -> None:
        where = plugin_name(cls)
        for attribute in ("name", "summary"):
            if not getattr(cls, attribute, None):
                raise PluginError(f"action {where}: needs a {attribute}")
        if cls.name in self._actions:
            raise PluginError(
                f"action {where}: the name {cls.name!r} is taken by {plugin_name(self._actions[cls.name])}"
            )
        _verify_inside(f"action {where}", cls.inside)
        if clash := sorted(STEP_FIELDS & set(cls.Params.model_fields)):
            raise PluginError(
                f"action {where}: its parameter {', '.join(clash)} has the name of a step's own field "
                f"({', '.join(sorted(STEP_FIELDS))}); rename it"
            )
        if cls.run is Action.run:
            raise PluginError(f"action {where}: has no run()")
        self._actions[cls.name] = cls

    def add_module(self, module: ModuleType) -> None:
        """What a plugin module brings, in the order it defines it: the classes it marked itself (not those it
        imports from another module) and its ``ObservationGroup`` values."""
        for value in list(vars(module).values()):
            if isinstance(value, ObservationGroup):
                self.add_observations(value)
            elif is_marked(value) and value.__module__ == module.__name__:
                self.add_class(value, where=module.__name__)

    def add_class(self, cls: type, *, where: str) -> None:
        """A class marked by ``register_witness`` or ``register_action`` (``where`` names its module)."""
        if issubclass(cls, Witness):
            self.add_witness(cls)
        elif issubclass(cls, Action):
            self.add_action(cls)
        else:
            raise PluginError(
                f"{where}: {plugin_name(cls)} is marked as a plugin but is neither a Witness nor an Action"
            )

    # -- reading -----------------------------------------------------------------------------------------
    def witnesses_needed(self, names: Iterable[str]) -> frozenset[str]:
        """The witnesses that make these observations (the step's own facts need none)."""
        return frozenset(self._observations[name].source for name in names) & frozenset(self._witnesses)

    def charted(self) -> dict[str, str]:
        """Every observation with a chart, and its title, in the plugins' order."""
        return {name: title for cls in self._witnesses.values() for name, title in cls.charts}

    def inside_parts(self, witnesses: Iterable[Witness], actions: Iterable[str]) -> str:
        """The in-server parts of these witnesses and actions, for ``FAULTLAB_INSIDE``: only what the run uses."""
        parts = [w.inside for w in witnesses] + [self._actions[name].inside for name in actions]
        return ",".join(dict.fromkeys(p for p in parts if p))


# Which threads are loading plugins now: a plugin that calls load_plugins() while it is being loaded (at its
# module's top) is refused. Per thread, so that a load in another thread (a run alongside) is not.
_loading = threading.local()


def load_plugins() -> Registry:
    """A registry of the built-in plugins, then those of other distributions (the entry points), each checked
    as it registers. Call it once (the command line does) and pass the registry to what needs it."""
    if getattr(_loading, "active", False):
        raise PluginError(
            "a plugin asked for the registry while the plugins were being loaded (at its module's top, or in "
            "something that runs there); ask for it inside the function that needs it"
        )
    _loading.active = True
    try:
        registry = Registry()
        for name in BUILTIN_PLUGINS:
            registry.add_module(importlib.import_module(name))
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            _add_entry_point(registry, entry_point)
        return registry
    finally:
        _loading.active = False


def _add_entry_point(registry: Registry, entry_point: EntryPoint) -> None:
    """One entry point of ``ENTRY_POINT_GROUP``: a module (what it marks and declares) or one marked class."""
    try:
        loaded = entry_point.load()
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(
            f"plugin {entry_point.name} ({entry_point.value}, from the {ENTRY_POINT_GROUP} entry "
            f"points) could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(loaded, ModuleType):
        registry.add_module(loaded)
    elif is_marked(loaded):
        registry.add_class(loaded, where=f"plugin {entry_point.name}")
    else:
        raise PluginError(
            f"plugin {entry_point.name} ({entry_point.value}): names {loaded!r}, not a module or a class marked "
            "with register_witness or register_action"
        )
