"""Plugins' parts inside the served process. A witness or an action may name a function (``inside =
"package.module:install"``) that the harness calls once, at start-up, with an ``Inside``: the app's engine, counters
of the plugin's own in shared memory (read from outside by ``RunContext.plugin_counters``, as the harness's own
are), and routes under ``/_lab/`` for what an action asks the server to do. Only the plugins a run uses are
installed (``FAULTLAB_INSIDE``), so a run pays for no one else's listeners.

An inside module runs in the app's process: it imports what the app's process has (the standard library,
Starlette, SQLAlchemy) and ``faultlab.inside``, nothing else of faultlab.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from faultlab.inside import wire
from faultlab.inside.stats import StatsWriter

__all__ = ["Inside", "install"]

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass
class Inside:
    """What an inside function is given: use it, keep nothing else of the harness."""

    engine: Engine | None
    stats_dir: Path
    routes: list[Route] = field(default_factory=list)

    def counters(self, name: str, counters: Sequence[str]) -> StatsWriter:
        """Counters of this plugin's own (``add``, ``put``), one file per server process."""
        return StatsWriter(self.stats_dir, name, counters)

    def route(self, path: str, endpoint: Endpoint, methods: Sequence[str] = ("POST",)) -> None:
        """``/_lab/<path>``: what the plugin's action asks for with ``RunContext.harness(path)``."""
        full = wire.PROBE_PREFIX + path
        if any(route.path == full for route in self.routes):
            raise RuntimeError(f"two inside functions add the route {full}")
        self.routes.append(Route(full, endpoint, methods=list(methods)))


def install(references: str, inside: Inside) -> None:
    """Call each ``module:function`` of the comma-separated ``references`` with ``inside``."""
    for reference in filter(None, (r.strip() for r in references.split(","))):
        module_name, _, function = reference.partition(":")
        getattr(importlib.import_module(module_name), function)(inside)
