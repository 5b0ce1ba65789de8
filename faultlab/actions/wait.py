"""Let time pass (an idle timeout, a lock held elsewhere)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import Field

from faultlab.plugins.registry import Action, NoParams, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


class WaitParams(NoParams):
    seconds: float = Field(gt=0, le=30)


@register_action
class Wait(Action):
    name = "wait"
    summary = "wait"
    Params = WaitParams

    def label(self, params: WaitParams) -> str:
        return f"wait {params.seconds:g} s"

    def run(self, ctx: RunContext, params: WaitParams) -> str:
        time.sleep(params.seconds)
        return f"waited {params.seconds:g} s"
