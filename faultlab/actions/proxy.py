"""The network between the app and its database, through the run's fault proxy (``setup.network =
"fault-proxy"``, ``faultlab.backends.proxy``): switch its faults at a step, or drop every connection at once.
A switch is atomic for the connections already open too. Whatever a step leaves on, the run's clean-up
switches off before the server stops, so that it can shut down cleanly."""

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
    blackhole: bool | None = Field(None, description="forward nothing either way; connections stay open")
    reset_new: bool | None = Field(None, description="answer each new connection with an RST")

    @model_validator(mode="after")
    def _something_to_switch(self) -> ProxyParams:
        if self.latency_ms is None and self.blackhole is None and self.reset_new is None:
            raise ValueError("set_proxy needs latency_ms, blackhole or reset_new")
        return self


@register_action
class SetProxy(Action):
    name = "set_proxy"
    summary = "switch the fault proxy's faults (latency, blackhole, reset of new connections)"
    backends = POSTGRESQL_ONLY
    needs_proxy = True
    Params = ProxyParams

    def label(self, params: ProxyParams) -> str:
        switched = [f"latency {params.latency_ms:g} ms"] if params.latency_ms is not None else []
        switched += [f"blackhole {'on' if params.blackhole else 'off'}"] if params.blackhole is not None else []
        switched += (
            [f"reset new connections {'on' if params.reset_new else 'off'}"] if params.reset_new is not None else []
        )
        return "fault proxy: " + ", ".join(switched)

    def run(self, ctx: RunContext, params: ProxyParams) -> str:
        changes: dict[str, Any] = {"latency_s": params.latency_ms / 1000} if params.latency_ms is not None else {}
        changes |= {"blackhole": params.blackhole} if params.blackhole is not None else {}
        changes |= {"reset_new": params.reset_new} if params.reset_new is not None else {}
        faults = ctx.proxy.set(**changes)
        return (
            f"the fault proxy now applies: {faults.describe()} (to the {ctx.proxy.stats().open} connections open too)"
        )

    def cleanup(self, ctx: RunContext) -> None:
        ctx.proxy.set(latency_s=0.0, blackhole=False, reset_new=False)


@register_action
class DropConnections(Action):
    name = "drop_connections"
    summary = "reset every connection through the fault proxy at once (a failover, a NAT table flushed)"
    backends = POSTGRESQL_ONLY
    needs_proxy = True

    def run(self, ctx: RunContext, params: Any) -> str:
        dropped = ctx.proxy.drop_all()
        return f"the fault proxy reset {dropped} open connection{'' if dropped == 1 else 's'} (RST to the app)"
