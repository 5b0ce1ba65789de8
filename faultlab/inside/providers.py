"""Which dependency gave the app's code its session: the cause of a leak is often not the line that checked the
connection out but the dependency that handed the session over and never closes it (``return Session(engine)``).

A connection is checked out in the route, or in a dependency of it (``get_current_user(session: SessionDep)``,
called by FastAPI, so the route itself is not on the stack). Either way the function on the stack names the
session it used by a parameter annotated ``Session`` (or ``AsyncSession``), and that parameter's dependency,
after the app's overrides, is the provider: a plain function that returns it leaks every session it makes, a
generator (sync or async) closes it after the response. Only what FastAPI's own dependency tree says is read;
a function this cannot tie to a parameter gets no provider (the checkout line stands).
"""

from __future__ import annotations

import dis
import inspect
import sys
from types import CodeType
from typing import Any

__all__ = ["endpoints", "session_classes", "session_provider"]

_MAX_WRAPPERS = 8
_MAX_NODES = 10_000  # a dependency tree this large is walked no further


def _routes(target: object) -> tuple[list[Any], dict[Any, Any]]:
    """The app's routes, those of included routers too (FastAPI keeps them apart, ``original_router``), and its
    dependency overrides."""
    app: Any = target
    for _ in range(_MAX_WRAPPERS):
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            break
        app = getattr(app, "app", None)
    else:
        return [], {}
    found: list[Any] = []
    pending = list(routes)
    while pending and len(found) < _MAX_NODES:
        route = pending.pop(0)
        included = getattr(route, "original_router", None)
        if included is not None:
            pending += list(getattr(included, "routes", []))
        else:
            found.append(route)
    return found, dict(getattr(app, "dependency_overrides", None) or {})


def session_classes() -> tuple[type, ...]:
    """``Session``, and ``AsyncSession`` when the app loaded SQLAlchemy's async layer (else it cannot hold one)."""
    from sqlalchemy.orm import Session

    asyncio_ext = sys.modules.get("sqlalchemy.ext.asyncio")
    return (Session, asyncio_ext.AsyncSession) if asyncio_ext is not None else (Session,)


def _session_params(call: Any) -> set[str]:
    kinds = session_classes()
    try:
        hints = inspect.get_annotations(call, eval_str=True)
    except Exception:  # an annotation that cannot be evaluated here: no parameter is known to be a session
        return set()
    found = set()
    for name, hint in hints.items():
        hint = getattr(hint, "__origin__", hint) if hasattr(hint, "__metadata__") else hint
        if isinstance(hint, type) and issubclass(hint, kinds):
            found.add(name)
    return found


def _return_line(code: CodeType) -> int:
    """The line the function returns from, when it has one: that is where the session leaves it; else its ``def``."""
    lines = {
        ins.positions.lineno
        for ins in dis.get_instructions(code)
        if ins.opname == "RETURN_VALUE" and ins.positions is not None and ins.positions.lineno is not None
    }
    return lines.pop() if len(lines) == 1 else code.co_firstlineno


def _closes_after(call: Any) -> bool:
    """A generator dependency (sync or async) runs its clean-up after the response; a plain one cannot."""
    return inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call)


def _provider(node: Any, call: Any, overrides: dict[Any, Any]) -> tuple[CodeType, int] | None:
    """The plain function that gave ``call`` (the route or a dependency, ``node`` its place in the tree) its
    session; None when its session comes from a generator, or from no dependency at all."""
    wanted = _session_params(call)
    for sub in getattr(node, "dependencies", []):
        provider = overrides.get(sub.call, sub.call)
        code = getattr(provider, "__code__", None)
        if sub.name in wanted and code is not None and not _closes_after(provider):
            return (code, _return_line(code))
    return None


def session_provider(target: object, codes: set[CodeType]) -> tuple[CodeType, int] | None:
    """The dependency (after the app's overrides) that gave the function on the stack (``codes``: a route, or a
    dependency of one) its session, when that dependency is a plain function: it returns the session, so nothing
    closes it after the response (a generator's ``finally`` would). An overridden dependency's own tree is not
    FastAPI's route tree: it is judged as a function on the stack, never walked into."""
    routes, overrides = _routes(target)
    seen: set[int] = set()
    pending = [getattr(route, "dependant", None) for route in routes]
    while pending and len(seen) < _MAX_NODES:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        call = overrides.get(node.call, node.call)
        if getattr(call, "__code__", None) in codes and (found := _provider(node, call, overrides)) is not None:
            return found
        if call is node.call:  # an override's dependencies are not these
            pending += list(getattr(node, "dependencies", []))
    return None


def _def_line(call: Any, code: CodeType) -> int:
    """The line of the ``def`` itself: a decorated function's code starts at its first decorator."""
    try:
        lines, first = inspect.getsourcelines(call)
    except (OSError, TypeError):
        return code.co_firstlineno
    for offset, line in enumerate(lines):
        if line.lstrip().startswith(("def ", "async def ")):
            return first + offset
    return code.co_firstlineno


def endpoints(target: object) -> dict[str, tuple[CodeType, int]]:
    """Each route's endpoint function and the line of its ``def``, by ``METHOD /path`` as the OpenAPI document
    names the operation (what FastAPI calls for it: an endpoint is no dependency, so no override replaces it)."""
    found: dict[str, tuple[CodeType, int]] = {}
    for route in _routes(target)[0]:
        endpoint, path = getattr(route, "endpoint", None), getattr(route, "path", None)
        if not callable(endpoint) or not isinstance(path, str):
            continue
        call = inspect.unwrap(endpoint)
        if (code := getattr(call, "__code__", None)) is None:
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            found.setdefault(f"{method} {path}", (code, _def_line(call, code)))
    return found
