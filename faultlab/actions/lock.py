"""Another connection holds the database's write lock for a while (``faultlab.backends.write_lock``). Released when its
time is up, and at the end of the run whatever happens (clean-up), so a lock never outlives the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from faultlab.backends.write_lock import WriteLock
from faultlab.plugins.registry import Action, NoParams, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext

WAIT_S = 5.0  # for a lock the app itself holds, as SQLite's own default busy timeout


class HoldParams(NoParams):
    seconds: float = Field(gt=0, le=10)


@register_action
class HoldWriteLock(Action):
    name = "hold_write_lock"
    summary = "another connection holds the write lock"
    Params = HoldParams

    def __init__(self) -> None:
        self._lock = WriteLock()

    def label(self, params: HoldParams) -> str:
        return f"another connection holds the write lock for {params.seconds:g} s"

    def run(self, ctx: RunContext, params: HoldParams) -> str:
        how = self._lock.hold(ctx.backend, params.seconds, wait_s=WAIT_S)
        if how is None:
            raise RuntimeError(f"the app itself held a write lock for more than {WAIT_S:g} s, so none could be taken")
        return f"another connection holds the write lock ({how}) for {params.seconds:g} s"

    def cleanup(self, ctx: RunContext) -> None:
        self._lock.release()
