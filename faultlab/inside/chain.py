"""An exception as the harness records it: the exception, what caused it or what it interrupted, and every leaf
of an exception group, each with its type, its first line and the app's line nearest its raise."""

from __future__ import annotations

import re
from typing import Any

from faultlab.inside.sites import describe as describe_site
from faultlab.inside.sites import traceback_site

__all__ = ["describe_chain"]

_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)$")
MAX_CHAIN = 8
MAX_DETAILS = 3


def _describe(exc: BaseException, relation: str) -> dict[str, Any]:
    kind = type(exc)
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    # SQLAlchemy appends the SQL on later lines and a link in parentheses; the first line says what happened.
    message = _BACKGROUND.sub("", lines[0]) if lines else ""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic and FastAPI validation errors: the reasons are in errors(), not line 1
        try:
            reasons = [_BACKGROUND.sub("", str(e.get("msg", ""))) for e in errors() if isinstance(e, dict)]
        except Exception:  # a broken errors() must not hide the exception itself
            reasons = []
        if reasons:
            message = f"{message} {'; '.join(dict.fromkeys(reasons[:MAX_DETAILS]))}".strip()
    described: dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}", "message": message}
    described["relation"] = relation
    if (site := traceback_site(exc)) is not None:  # the app's line nearest this exception's raise
        described["where"] = describe_site(site)
    return described


def describe_chain(exc: BaseException) -> list[dict[str, Any]]:
    """The exception, what caused it (``__cause__``) or what it interrupted (``__context__``), and every
    leaf of an exception group: type, first line, how each relates to the one before, and the app's line
    nearest its raise (``where``, when its traceback passes through the app's code)."""
    chain: list[dict[str, Any]] = []
    seen: set[int] = set()

    def visit(current: BaseException, relation: str) -> None:
        if id(current) in seen or len(chain) >= MAX_CHAIN:
            return
        seen.add(id(current))
        chain.append(_describe(current, relation))
        if isinstance(current, BaseExceptionGroup):
            for inner in current.exceptions:
                visit(inner, "in group")
        if current.__cause__ is not None:
            visit(current.__cause__, "caused by")
        elif current.__context__ is not None and not current.__suppress_context__:
            visit(current.__context__, "while handling")

    visit(exc, "raised")
    return chain
