"""What went through the fault proxy between the app and its database during a step (``setup.network =
"fault-proxy"``): connections, resets, bytes each way, what its toxics did to them (bytes swallowed, delayed,
throttled; connections closed by ``limit_data``), and the faults it applies. Read from the proxy's own
counters in the lab's process: nothing is sent to the server or the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import POSTGRESQL_ONLY, Kind, ObservationSpec, Witness, register_witness

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext

# The proxy's counters that only grow: each observation is the step's share of one.
_GROWING = {
    "proxy_connections": ("connections", "connections the proxy accepted during the step"),
    "proxy_resets": ("resets", "connections the proxy reset during the step"),
    "proxy_bytes_up": ("bytes_up", "bytes forwarded from the app to the database during the step"),
    "proxy_bytes_down": ("bytes_down", "bytes forwarded from the database to the app during the step"),
    "proxy_swallowed": ("swallowed", "bytes the blackhole swallowed during the step"),
    "proxy_delayed": ("delayed", "bytes held back by latency or jitter during the step"),
    "proxy_throttled": ("throttled", "bytes paced by the bandwidth during the step"),
    "proxy_limit_closes": ("limit_closes", "connections closed by limit_data during the step"),
}

# What a report line adds when it happened during the step: connections ended, bytes a toxic touched.
_CLOSED = {"proxy_resets": "reset", "proxy_limit_closes": "closed by limit_data"}
_TOXIC = {"proxy_swallowed": "swallowed", "proxy_delayed": "delayed", "proxy_throttled": "throttled"}


@register_witness
class Proxy(Witness):
    name = "proxy"
    title = "the fault proxy between the app and its database"
    backends = POSTGRESQL_ONLY
    needs_proxy = True
    observations = (
        *(ObservationSpec(name, Kind.COUNT, description) for name, (_, description) in _GROWING.items()),
        ObservationSpec("proxy_open", Kind.COUNT, "connections open through the proxy after the step"),
        ObservationSpec("proxy_faults", Kind.TEXT, "the faults the proxy applies after the step"),
    )
    charts = (("proxy_open", "connections open through the fault proxy"),)

    def before_step(self, ctx: RunContext) -> None:
        ctx.marks[self.name] = asdict(ctx.proxy.stats())

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        now, before = asdict(ctx.proxy.stats()), ctx.marks.get(self.name, {})
        values: dict[str, Any] = {name: now[key] - before.get(key, 0) for name, (key, _) in _GROWING.items()}
        return values | {"proxy_open": now["open"], "proxy_faults": ctx.proxy.faults.describe()}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        if values.get("proxy_open") is None:
            return []
        closed = [f"{values[name]} {word}" for name, word in _CLOSED.items() if values.get(name)]
        toxic = [f"{values[name]} B {word}" for name, word in _TOXIC.items() if values.get(name)]
        links = ", ".join([f"{values['proxy_open']} open", f"{values['proxy_connections']} new", *closed])
        touched = f" ({', '.join(toxic)})" if toxic else ""
        return [
            f"proxy: {values['proxy_faults']}; {links}, "
            f"{values['proxy_bytes_up']} B up, {values['proxy_bytes_down']} B down{touched}"
        ]
