"""Which app the server really serves and which database its engine uses, and a guard that lets SQLAlchemy
connect to one database only (the doctor's throwaway), from before the app's first import.

The doctor sets ``FAULTLAB_ONLY_DB`` (``wire.ONLY_DB_ENV``) to ``BACKEND:DATABASE`` (``postgresql:NAME`` or
``sqlite:/abs/path``): every connection any engine makes to another database is refused before the driver
is called, so an app still configured for its real database cannot write a row there, even from code that
runs at import time. ``python -m faultlab.inside.identity`` imports the app under that guard and prints
what ``describe`` says, without serving it (the doctor asks before it runs set-up commands).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from sqlalchemy import Engine, event

from faultlab.inside import wire
from faultlab.inside.providers import session_classes
from faultlab.inside.sites import is_users_file

__all__ = [
    "REFUSED",
    "as_engine",
    "describe",
    "find_engine",
    "guard",
    "import_target",
    "load",
    "load_engine",
    "module_sessions",
]

REFUSED = "faultlab: refused a connection"  # the doctor finds this in a server's log


def _database(backend: str, cargs: Any, cparams: dict[str, Any]) -> str:
    """The database a driver is about to open, from its connect arguments (the URL is not at hand there)."""
    if backend == "sqlite":
        name = str(cargs[0]) if cargs else str(cparams.get("database", ""))
        return os.path.realpath(name.removeprefix("file:").partition("?")[0]) if name not in ("", ":memory:") else name
    return str(cparams.get("dbname") or cparams.get("database") or "")


def guard(only: str) -> None:
    """Refuse every SQLAlchemy connection to a database other than ``only`` (``BACKEND:DATABASE``)."""
    allowed_backend, _, allowed = only.partition(":")
    if allowed_backend == "sqlite":
        allowed = os.path.realpath(allowed)

    def refuse_others(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        backend = "sqlite" if dialect.name == "sqlite" else dialect.name
        name = _database(backend, cargs, cparams)
        if (backend, name) != (allowed_backend, allowed):
            raise RuntimeError(
                f"{REFUSED} to the {backend} database {name!r}: the doctor lets the app reach only its throwaway "
                f"database {allowed!r}"
            )

    event.listen(Engine, "do_connect", refuse_others)


def _url(engine: Engine) -> dict[str, str]:
    url = engine.url
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        database = os.path.realpath(database.removeprefix("file:").partition("?")[0])
    return {
        "engine_url": url.render_as_string(hide_password=True),
        "engine_backend": url.get_backend_name(),
        "engine_database": database,
    }


def describe(target: Any, module_name: str, engine: Engine | None) -> dict[str, str]:
    """Where the app was loaded from, by which interpreter, its OpenAPI document's URL, and its engine's URL
    (password hidden)."""
    module = sys.modules.get(module_name)
    found = {
        "app_file": str(getattr(module, "__file__", "") or ""),
        "openapi_url": str(getattr(target, "openapi_url", "") or ""),
        "python": sys.executable,
    }
    return {**found, **(_url(engine) if engine is not None else {})}


def load(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute or "app")


def as_engine(value: Any) -> Engine | None:
    """``value`` as the ``Engine`` whose events and pool the harness watches: an Engine itself, or an
    ``AsyncEngine``'s ``sync_engine`` (its pool and its statements go through that one); else None."""
    if isinstance(value, Engine):
        return value
    # Only an app that imported sqlalchemy.ext.asyncio can hold an AsyncEngine; importing it here would cost
    # every sync app the import (and a project without greenlet its start-up).
    asyncio_ext = sys.modules.get("sqlalchemy.ext.asyncio")
    if asyncio_ext is not None and isinstance(value, asyncio_ext.AsyncEngine):
        sync_engine: Engine = value.sync_engine
        return sync_engine
    return None


def find_engine(target: Any, module_name: str) -> Engine | None:
    """The engine the target serves: ``app.state.engine``, else the target module's ``engine``, else the one
    Engine (or AsyncEngine) held by any loaded module of the app (None if there is none, or several to choose
    from). An AsyncEngine is answered as its ``sync_engine``: the harness counts its pool through that."""
    state_engine = as_engine(getattr(getattr(target, "state", None), "engine", None))
    if state_engine is not None:
        return state_engine
    module_engine = as_engine(getattr(sys.modules.get(module_name), "engine", None))
    if module_engine is not None:
        return module_engine
    found = {
        id(engine): engine
        for module in list(sys.modules.values())
        if not getattr(module, "__name__", "").startswith(("sqlalchemy", "faultlab."))
        for value in list(vars(module).values())
        if (engine := as_engine(value)) is not None
    }
    return next(iter(found.values())) if len(found) == 1 else None


def module_sessions() -> list[str]:
    """``module.name`` of each ``Session`` or ``AsyncSession`` held by a global of the app's own modules: one
    session made at import serves every request that uses it, concurrent ones too. Read from the modules'
    globals as they are now (no line: which line made it is not recorded)."""
    kinds = session_classes()
    found = []
    for name, module in sorted(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str) or not is_users_file(file):
            continue
        found += [f"{name}.{key}" for key, value in list(vars(module).items()) if isinstance(value, kinds)]
    return found


_guarded: list[str] = []  # the guard is installed once per process


def import_target(reference: str) -> None:
    """Import the module of ``reference`` (``module:attribute``), under ``FAULTLAB_ONLY_DB``'s guard when it is
    set: the guard comes first, so code the app runs at import time is held to it too."""
    if (only := os.environ.get(wire.ONLY_DB_ENV)) and not _guarded:
        guard(only)
        _guarded.append(only)
    importlib.import_module(reference.partition(":")[0])


def load_engine(reference: str) -> Engine | None:
    """``FAULTLAB_ENGINE``'s engine (``module:attribute``), an AsyncEngine as its ``sync_engine``."""
    return as_engine(load(reference))


def main() -> None:
    reference = os.environ[wire.TARGET_ENV]
    if only := os.environ.get(wire.ONLY_DB_ENV):
        guard(only)
    target = load(reference)
    engine_reference = os.environ.get(wire.ENGINE_ENV)
    engine = load_engine(engine_reference) if engine_reference else find_engine(target, reference.partition(":")[0])
    print(json.dumps(describe(target, reference.partition(":")[0], engine)))


if __name__ == "__main__":
    main()
