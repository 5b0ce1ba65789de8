"""A request step: send the step's requests (with background load, if any), time them, and say what came back.

Its observations are declared here like a witness's (``GROUP``, collected by ``load_plugins``), so expectations on
them are checked at load.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from faultlab.inside import wire
from faultlab.plugins.domain import Numbers
from faultlab.plugins.registry import Kind, ObservationGroup, ObservationSpec

if TYPE_CHECKING:
    from faultlab.model.spec import RequestStep
    from faultlab.plugins.context import RunContext
    from faultlab.server import client

__all__ = ["GROUP", "OBSERVATIONS", "execute", "parts", "percentile"]

OBSERVATIONS = (
    ObservationSpec("requests", Kind.COUNT, "requests sent in this step", "request"),
    ObservationSpec(
        "status",
        Kind.COUNT,
        "the HTTP status, when every response had the same one",
        "request",
        narrowed=Numbers(100, 599, nouns="HTTP statuses"),
    ),
    ObservationSpec("statuses", Kind.TALLY, "how many responses had each status", "request"),
    ObservationSpec("ok", Kind.COUNT, "2xx responses", "request"),
    ObservationSpec("server_errors", Kind.COUNT, "5xx responses", "request"),
    ObservationSpec("timeouts", Kind.COUNT, "requests that got no answer before the step's timeout", "request"),
    ObservationSpec("transport_errors", Kind.COUNT, "requests that failed below HTTP (connection reset)", "request"),
    ObservationSpec(
        "first_failure_at",
        Kind.COUNT,
        "1-based number of the first non-2xx response",
        "request",
        narrowed=Numbers(1, nouns="request numbers"),
    ),
    ObservationSpec("rows", Kind.COUNT, "items in the last response, when it is a JSON list", "request"),
    ObservationSpec("body", Kind.TEXT, "the last response's body, shortened", "request"),
    ObservationSpec("latency_p50_ms", Kind.NUMBER, "median time to an answer, in ms", "request"),
    ObservationSpec("latency_p95_ms", Kind.NUMBER, "95th percentile of the time to an answer, in ms", "request"),
    ObservationSpec("latency_max_ms", Kind.NUMBER, "slowest answer, in ms", "request"),
    ObservationSpec("background_requests", Kind.COUNT, "background requests sent during the step", "background"),
    ObservationSpec("background_ok", Kind.COUNT, "of those, 2xx responses", "background"),
    ObservationSpec(
        "background_latency_max_ms", Kind.NUMBER, "slowest background answer (or wait), in ms", "background"
    ),
)
GROUP = ObservationGroup("request step", OBSERVATIONS)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: a value that was really observed, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def execute(step: RequestStep, ctx: RunContext, after_each: Callable[[], None] | None) -> dict[str, Any]:
    """Send the step's requests; ``after_each`` runs after every sequential request (``sample_each``)."""
    from faultlab.server import client  # httpx: only when requests are sent, not when the catalogue is listed

    headers = {wire.STEP_HEADER.decode(): f"{ctx.run}:{ctx.step}"}
    request = client.Request(step.method, ctx.server.base_url + step.path, step.json_body, headers)

    def send() -> list[client.Outcome]:
        return client.send_many(
            request,
            repeat=step.repeat,
            concurrency=step.concurrency,
            timeout_s=step.timeout_s,
            interval_s=step.interval_s,
            after_each=(lambda _: after_each()) if after_each else None,
        )

    facts: dict[str, Any] = {}
    if step.background is None:
        outcomes = send()
    else:
        extra = step.background
        load_request = client.Request(extra.method, ctx.server.base_url + extra.path, extra.json_body, headers)
        with client.Load(
            load_request, clients=extra.clients, max_requests=extra.max_requests, timeout_s=step.timeout_s
        ) as load:
            outcomes = send()
        facts |= {
            "background_requests": len(load.outcomes),
            "background_ok": sum(o.ok for o in load.outcomes),
            # None (no value, so no expectation holds) when no background request was sent, rather than 0 ms.
            "background_latency_max_ms": _ms(max(o.elapsed_s for o in load.outcomes)) if load.outcomes else None,
        }
    return facts | _facts(outcomes)


def _facts(outcomes: list[client.Outcome]) -> dict[str, Any]:
    statuses = Counter(o.status for o in outcomes if o.status is not None)
    first_failure = next((i for i, o in enumerate(outcomes, 1) if not o.ok), None)
    answered = [o.elapsed_s for o in outcomes]
    last = outcomes[-1]
    return {
        "requests": len(outcomes),
        "status": next(iter(statuses)) if len(statuses) == 1 and sum(statuses.values()) == len(outcomes) else None,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "ok": sum(o.ok for o in outcomes),
        "server_errors": sum(1 for o in outcomes if o.status is not None and o.status >= 500),
        "timeouts": sum(o.failure == "timeout" for o in outcomes),
        "transport_errors": sum(o.failure == "transport" for o in outcomes),
        "first_failure_at": first_failure,
        "rows": last.rows,
        "body": last.body,
        "latency_p50_ms": _ms(percentile(answered, 0.50)),
        "latency_p95_ms": _ms(percentile(answered, 0.95)),
        "latency_max_ms": _ms(max(answered)),
    }


def parts(values: Mapping[str, Any]) -> list[str]:
    """The step's HTTP facts in a few words: ``500×20, 201×15 · p50 12 ms``."""
    if values.get("requests") is None:
        return []
    counts = ", ".join(f"{code}×{n}" if n > 1 else code for code, n in (values.get("statuses") or {}).items())
    extras = [
        f"{n} {label}"
        for n, label in ((values.get("timeouts"), "timed out"), (values.get("transport_errors"), "reset"))
        if n
    ]
    found = [", ".join(filter(None, [counts, *extras])) or "no answer"]
    if (rows := values.get("rows")) is not None:
        found.append(f"{rows} row" + ("" if rows == 1 else "s"))
    if values.get("requests", 0) > 1 or values.get("background_requests") is not None:
        found.append(f"latency p50 {values['latency_p50_ms']:g} ms, max {values['latency_max_ms']:g} ms")
    if (sent := values.get("background_requests")) is not None:
        found.append(f"background {values.get('background_ok')}/{sent} ok")
    return found
