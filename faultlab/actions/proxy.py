"""The network between the app and its database, through the run's fault proxy (``setup.network =
"fault-proxy"``, ``faultlab.backends.proxy``): switch its faults at a step, or drop every connection at once.
A switch is atomic for the connections already open too: each chunk read after it takes the new faults whole,
a chunk already read (waiting out its latency, being paced) is forwarded as before (``faultlab.backends.toxics``).
Whatever a step leaves on, the run's clean-up switches off before the server stops, so that it can shut down
cleanly. The parameters follow Toxiproxy's toxics: ``latency`` and ``jitter``, ``bandwidth``'s ``rate``,
``limit_data``'s ``bytes``, ``timeout`` with 0 (``blackhole``), ``reset_peer`` (``reset_new``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from faultlab.plugins.registry import POSTGRESQL_ONLY, Action, NoParams, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


class ProxyParams(NoParams):
    latency_ms: float | None = Field(
        None, ge=0, le=5000, description="delay what the database sends by this long (a round trip gains it once)"
    )
    jitter_ms: float | None = Field(
        None, ge=0, le=5000, description="vary that delay by up to this much either way, drawn for each chunk"
    )
    bandwidth_kb_s: float | None = Field(
        None, ge=0, le=1_000_000, description="pace each direction to this many KB (1000 B) a second; 0 is off"
    )
    limit_data: int | None = Field(
        None, ge=0, description="close a connection once this many bytes (both ways) have passed through it; 0 is off"
    )
    blackhole: bool | None = Field(None, description="forward nothing either way; connections stay open")
    reset_new: bool | None = Field(None, description="answer each new connection with an RST")

    @model_validator(mode="after")
    def _something_to_switch(self) -> ProxyParams:
        if not self.changes():
            raise ValueError(f"set_proxy needs one of {', '.join(ProxyParams.model_fields)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The faults given, in the proxy's units (seconds where the step says ms); those not given stay."""
        changes = self.model_dump(exclude_none=True)
        for name in ("latency", "jitter"):
            if f"{name}_ms" in changes:
                changes[f"{name}_s"] = changes.pop(f"{name}_ms") / 1000
        return changes


# How a step's label shows each parameter given: its words, and its value when on (0 or false: off).
_LABELS = {
    "latency_ms": ("latency", "{:g} ms"),
    "jitter_ms": ("jitter", "± {:g} ms"),
    "bandwidth_kb_s": ("bandwidth", "{:g} KB/s"),
    "limit_data": ("close after", "{} B"),
    "blackhole": ("blackhole", "on"),
    "reset_new": ("reset new connections", "on"),
}


@register_action
class SetProxy(Action):
    name = "set_proxy"
    summary = "switch the fault proxy's faults (latency, jitter, bandwidth, limit_data, blackhole, reset_new)"
    backends = POSTGRESQL_ONLY
    needs_proxy = True
    Params = ProxyParams

    def label(self, params: ProxyParams) -> str:
        given = params.model_dump(exclude_none=True)
        shown = ((*_LABELS[name], value) for name, value in given.items())
        return "fault proxy: " + ", ".join(
            f"{words} {on.format(value) if value else 'off'}" for words, on, value in shown
        )

    def run(self, ctx: RunContext, params: ProxyParams) -> str:
        faults, open_now = ctx.proxy.set(**params.changes()), ctx.proxy.stats().open
        links = f"{open_now} connection{'' if open_now == 1 else 's'}"
        return f"the fault proxy now applies: {faults.describe()} (to the {links} open too)"

    def cleanup(self, ctx: RunContext) -> None:
        ctx.proxy.set(latency_s=0.0, jitter_s=0.0, bandwidth_kb_s=0.0, limit_data=0, blackhole=False, reset_new=False)


@register_action
class DropConnections(Action):
    name = "drop_connections"
    summary = "reset every connection through the fault proxy at once (a failover, a NAT table flushed)"
    backends = POSTGRESQL_ONLY
    needs_proxy = True

    def run(self, ctx: RunContext, params: Any) -> str:
        dropped = ctx.proxy.drop_all()
        return f"the fault proxy reset {dropped} open connection{'' if dropped == 1 else 's'} (RST to the app)"
