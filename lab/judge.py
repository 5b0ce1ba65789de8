"""Compare what was observed with what an experiment expects."""

from __future__ import annotations

from typing import Any

from lab.observations import Observation, applies
from lab.results import Check
from lab.spec import Match, Matcher

__all__ = ["describe", "judge"]


def judge(expectations: dict[str, Matcher], observation: Observation, *, backend: str = "sqlite") -> list[Check]:
    """One check per expectation, leaving out witnesses the backend does not have (no fds on PostgreSQL)."""
    checks = []
    for name, matcher in expectations.items():
        if not applies(name, backend):
            continue
        observed = getattr(observation, name)
        checks.append(
            Check(observation=name, expected=describe(matcher), observed=observed, passed=_holds(matcher, observed))
        )
    return checks


def _holds(matcher: Matcher, observed: Any) -> bool:
    if not isinstance(matcher, Match):
        return _same(matcher, observed)
    text = observed if isinstance(observed, str) else None
    conditions = [
        "equals" not in matcher.model_fields_set or _same(matcher.equals, observed),
        matcher.min is None or (_is_number(observed) and observed >= matcher.min),
        matcher.max is None or (_is_number(observed) and observed <= matcher.max),
        matcher.contains is None or (text is not None and matcher.contains in text),
        matcher.not_contains is None or matcher.not_contains not in (text or ""),
    ]
    return all(conditions)


def _same(expected: Any, observed: Any) -> bool:
    # true must not equal 1: compare types as well as values.
    return type(expected) is type(observed) and expected == observed


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe(matcher: Matcher) -> str:
    if not isinstance(matcher, Match):
        return f"= {_show(matcher)}"
    parts = []
    if "equals" in matcher.model_fields_set:
        parts.append(f"= {_show(matcher.equals)}")
    if matcher.min is not None:
        parts.append(f"≥ {matcher.min:g}")
    if matcher.max is not None:
        parts.append(f"≤ {matcher.max:g}")
    if matcher.contains is not None:
        parts.append(f"contains {matcher.contains!r}")
    if matcher.not_contains is not None:
        parts.append(f"does not contain {matcher.not_contains!r}")
    return ", ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)
