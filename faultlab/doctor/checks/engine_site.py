"""Where the app made its engine, for the findings whose fix is an argument of that call (``pool_pre_ping``, a
statement timeout in ``connect_args``): the harness notes it as the engine is created
(``faultlab.inside.engine_sites``)."""

from __future__ import annotations

from faultlab.doctor.contract import CheckupContext
from faultlab.doctor.report import Location
from faultlab.doctor.where import locate

__all__ = ["engine_created_at"]


def engine_created_at(ctx: CheckupContext, fix: str) -> tuple[Location | None, str]:
    """The app's line that created the engine (and its caller, when a helper of the app's made it), its role
    saying what to put in that call (``fix``); else why no line can be named."""
    created = ctx.live.sites().get("engine_created_at")
    if created is None:
        return None, (
            "the harness did not see the engine being created (SQLAlchemy keeps no record of where an engine was "
            "made; the harness notes it only for engines created while the app is imported or served)"
        )
    if not created:
        return None, "the engine was created by installed libraries alone: no line of the app's code was on the stack"
    role = f"the engine is created here; {fix}"
    if (caller := locate([*created, None][1], ctx.app_dir)) is not None:
        role += f" (called from {caller})"
    return locate(created[0], ctx.app_dir, role), ""
