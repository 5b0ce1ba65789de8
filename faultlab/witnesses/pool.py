"""The SQLAlchemy pool, seen from inside the server through the harness's shared memory (``faultlab.inside.stats``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faultlab.inside.stats import Counters
from faultlab.plugins.registry import Kind, ObservationSpec, Unobservable, Witness, register_witness

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


def _counters(ctx: RunContext) -> Counters:
    counters = ctx.counters()
    if counters is None or not counters.engine:
        raise Unobservable("the harness found no SQLAlchemy engine in this app")
    return counters


@register_witness
class Pool(Witness):
    name = "pool"
    title = "the pool (inside the server)"
    observations = (
        ObservationSpec("pool_checked_out", Kind.COUNT, "connections checked out of the pool"),
        ObservationSpec("pool_overflow", Kind.COUNT, "connections open beyond pool_size"),
        ObservationSpec("pool_open", Kind.COUNT, "connections the pool holds open (in use or idle)"),
        ObservationSpec("pool_invalidations", Kind.COUNT, "connections the pool threw away as broken, since start"),
        ObservationSpec("requests_in_flight", Kind.COUNT, "requests the server has not finished"),
    )
    sampled = ("pool_checked_out",)
    charts = (("pool_checked_out", "connections checked out of the pool"),)

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        counters = _counters(ctx)
        return {
            "pool_checked_out": counters.pool_checked_out,
            "pool_overflow": counters.pool_overflow,
            "pool_open": counters.pool_open,
            "pool_invalidations": counters.pool_invalidations,
            "requests_in_flight": counters.in_flight,
        }

    def sample(self, ctx: RunContext) -> dict[str, int | float]:
        return {"pool_checked_out": _counters(ctx).pool_checked_out}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        found = []
        if (series := values.get("pool_checked_out_series")) is not None:
            found.append("pool out " + "→".join(map(str, series)))
        elif (out := values.get("pool_checked_out")) is not None:
            found.append(f"pool out {out}")
        if values.get("pool_invalidations"):
            found.append(f"{values['pool_invalidations']} invalidated")
        if values.get("requests_in_flight"):
            found.append(f"{values['requests_in_flight']} still in flight")
        return found
