"""Compare what was observed with what an experiment expects: pass, fail, or n/a (not observable here)."""

from __future__ import annotations

from typing import Any

from faultlab.model.results import Check
from faultlab.model.spec import Match, Matcher
from faultlab.plugins.observations import Observation
from faultlab.plugins.registry import Registry

__all__ = ["describe", "judge"]


def judge(
    registry: Registry, expectations: dict[str, Matcher], observation: Observation, *, backend: str
) -> list[Check]:
    """One check per expectation. Observations that do not exist on this backend (no file descriptors on
    PostgreSQL, as ``registry`` says) are left out; those a witness could not make on this machine are n/a,
    with the reason."""
    known = registry.observations
    checks = []
    for name, matcher in expectations.items():
        if backend not in known[name].backends:
            continue
        expected = describe(matcher)
        if name in observation.unavailable:
            checks.append(
                Check(
                    observation=name,
                    expected=expected,
                    observed=None,
                    outcome="n/a",
                    reason=observation.unavailable[name],
                )
            )
            continue
        observed = observation[name]
        outcome = "pass" if _holds(matcher, observed) else "fail"
        checks.append(Check(observation=name, expected=expected, observed=observed, outcome=outcome))
    return checks


def _holds(matcher: Matcher, observed: Any) -> bool:
    """Every bound must hold; a missing value (None) holds none of them, ``not_contains`` included."""
    if observed is None:
        return False
    if not isinstance(matcher, Match):
        return _same(matcher, observed)
    text = observed if isinstance(observed, str) else None
    conditions = [
        "equals" not in matcher.model_fields_set or _same(matcher.equals, observed),
        matcher.min is None or (_is_number(observed) and observed >= matcher.min),
        matcher.max is None or (_is_number(observed) and observed <= matcher.max),
        matcher.contains is None or (text is not None and matcher.contains in text),
        matcher.not_contains is None or (text is not None and matcher.not_contains not in text),
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
