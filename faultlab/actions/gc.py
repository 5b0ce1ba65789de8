"""The server's garbage collector: run it, or switch it off and on. Actions, not observations: they change
what happens next, and the report lists them as steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import Action, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


@register_action
class GcCollect(Action):
    name = "gc_collect"
    summary = "gc.collect() in the server"
    one_process = True
    inside = "faultlab.inside.gc:install"

    def run(self, ctx: RunContext, params: Any) -> str:
        before = ctx.counters()
        collected = ctx.harness("gc")["collected"]
        after = ctx.counters()
        if before is None or after is None or not after.engine:
            return f"gc.collect() in the server: {collected} objects collected"
        return f"gc.collect() in the server: checked out {before.pool_checked_out} → {after.pool_checked_out}"


class _GcSwitch(Action):
    switch: str
    one_process = True
    inside = "faultlab.inside.gc:install"

    def run(self, ctx: RunContext, params: Any) -> str:
        ctx.harness(f"gc/{self.switch}")
        return f"the server's garbage collector is {self.switch}d"


@register_action
class GcDisable(_GcSwitch):
    name = "gc_disable"
    summary = "gc.disable() in the server"
    switch = "disable"


@register_action
class GcEnable(_GcSwitch):
    name = "gc_enable"
    summary = "gc.enable() in the server"
    switch = "enable"
