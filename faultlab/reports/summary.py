"""One step's evidence in a line of words, for the terminal and the report's table."""

from __future__ import annotations

from faultlab.actions import request
from faultlab.model.results import Check
from faultlab.plugins.observations import Observation
from faultlab.plugins.registry import Registry

__all__ = ["check_line", "evidence_line", "evidence_parts", "witness_parts"]


def evidence_line(registry: Registry, obs: Observation) -> str:
    return " · ".join(evidence_parts(registry, obs))


def evidence_parts(registry: Registry, obs: Observation) -> list[str]:
    """The facts worth a glance, most telling first: what was done, what came back, what ``registry``'s
    witnesses saw."""
    return [part for _, part in witness_parts(registry, obs)]


def witness_parts(registry: Registry, obs: Observation) -> list[tuple[str | None, str]]:
    """``evidence_parts`` with the title of the witness each comes from (None: the step's own facts)."""
    parts: list[tuple[str | None, str]] = []
    if action := obs["action"]:
        parts.append((None, action))
    parts += [(None, part) for part in request.parts(obs.values)]
    for witness in registry.witnesses.values():
        parts += [(witness.title, part) for part in witness.parts(obs.values)]
    return parts


def check_line(check: Check, *, icon: bool = True) -> str:
    """One check in words; ``icon=False`` where a text marker stands beside it (the HTML report's [PASS])."""
    mark = {"pass": "✅ ", "n/a": "➖ ", "fail": "❌ "}[check.outcome] if icon else ""
    if check.outcome == "pass":
        return f"{mark}{check.observation} {check.expected}"
    if check.outcome == "n/a":
        return f"{mark}{check.observation} {check.expected}: n/a ({check.reason})"
    observed = check.observed
    if isinstance(observed, str) and len(observed) > 60:
        observed = observed[:59] + "…"
    return f"{mark}{check.observation} {check.expected} (saw {observed!r})"
