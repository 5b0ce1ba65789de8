"""The garbage-collector actions' part inside the server (``faultlab.actions.gc``): their routes under ``/_lab/``.
Kept with the harness, not beside the actions: the doctor serves a user's app with the harness alone
(``faultlab.inside``), and these routes must reach it too."""

from __future__ import annotations

import gc

from starlette.requests import Request
from starlette.responses import JSONResponse

from faultlab.inside.extensions import Inside

__all__ = ["install"]


def install(inside: Inside) -> None:
    inside.route("gc", _collect)
    inside.route("gc/{switch:str}", _switch)


async def _collect(request: Request) -> JSONResponse:
    """An action, not an observation: it changes what happens next, and the report says so."""
    return JSONResponse({"collected": gc.collect()})


async def _switch(request: Request) -> JSONResponse:
    """Switching the collector off makes a leak deterministic (and shows it is the collector that hides it in
    real life); the report lists it as an action."""
    switch = request.path_params["switch"]
    if switch not in ("disable", "enable"):
        return JSONResponse({"detail": "use /gc/disable or /gc/enable"}, status_code=404)
    if switch == "disable":
        gc.disable()
    else:
        gc.enable()
    return JSONResponse({"enabled": gc.isenabled()})
