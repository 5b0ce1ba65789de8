"""What happens to a database server under a running app: restarted, killed (``kill -9``), paused (SIGSTOP)
and resumed. Only on the run's own cluster (``setup.database = "own-cluster"``, ``faultlab.backends.cluster``):
the user's server is never stopped. Each leaves the server running and answering at the end of the run,
whatever happened (clean-up), so the next run starts on a healthy server."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field

from faultlab.plugins.registry import POSTGRESQL_ONLY, Action, NoParams, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


class _ClusterAction(Action):
    backends = POSTGRESQL_ONLY
    needs_own_cluster = True

    def cleanup(self, ctx: RunContext) -> None:
        ctx.cluster.ensure_running()


class RestartParams(NoParams):
    down_s: float = Field(0.0, ge=0, le=10, description="how long the server stays down between stop and start")


@register_action
class RestartDatabase(_ClusterAction):
    name = "restart_database"
    summary = "restart PostgreSQL (pg_ctl stop -m fast, then start)"
    Params = RestartParams

    def label(self, params: RestartParams) -> str:
        down = f", down for {params.down_s:g} s" if params.down_s else ""
        return f"restart PostgreSQL (pg_ctl stop -m fast, start{down})"

    def run(self, ctx: RunContext, params: RestartParams) -> str:
        ctx.cluster.restart(params.down_s)
        down = f" after {params.down_s:g} s down" if params.down_s else ""
        return f"PostgreSQL stopped (every session ended) and started again{down}, on the same port"


class KillParams(NoParams):
    start: bool = Field(True, description="start it again once every process is gone (crash recovery)")


@register_action
class KillDatabase(_ClusterAction):
    name = "kill_database"
    summary = "kill -9 the PostgreSQL postmaster"
    Params = KillParams

    def label(self, params: KillParams) -> str:
        return self.summary + (", then start it again" if params.start else "")

    def run(self, ctx: RunContext, params: KillParams) -> str:
        pid = ctx.cluster.kill()
        if params.start:
            ctx.cluster.start()
            return f"SIGKILL to the postmaster (pid {pid}); its backends exited; started again after crash recovery"
        return f"SIGKILL to the postmaster (pid {pid}); its backends exited; the server stays down"


@register_action
class StartDatabase(_ClusterAction):
    name = "start_database"
    summary = "start PostgreSQL again (pg_ctl start)"

    def run(self, ctx: RunContext, params: Any) -> str:
        if ctx.cluster.running():
            return "PostgreSQL was already running"
        ctx.cluster.start()
        return "PostgreSQL started (pg_ctl start)"


class PauseParams(NoParams):
    seconds: float | None = Field(None, gt=0, le=30, description="resume after this long (default: resume_database)")


@register_action
class PauseDatabase(_ClusterAction):
    name = "pause_database"
    summary = "pause PostgreSQL (SIGSTOP): connections stay open, nothing answers"
    Params = PauseParams

    def __init__(self) -> None:
        self._timer: threading.Timer | None = None

    def label(self, params: PauseParams) -> str:
        return "pause PostgreSQL (SIGSTOP)" + (f" for {params.seconds:g} s" if params.seconds else "")

    def run(self, ctx: RunContext, params: PauseParams) -> str:
        stopped = ctx.cluster.pause()
        if params.seconds:
            self._timer = threading.Timer(params.seconds, ctx.cluster.resume)
            self._timer.daemon = True
            self._timer.start()
        until = f"for {params.seconds:g} s" if params.seconds else "until resumed"
        return f"SIGSTOP to PostgreSQL's {stopped} processes, {until}: its sockets accept, nothing answers"

    def cleanup(self, ctx: RunContext) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().cleanup(ctx)


@register_action
class ResumeDatabase(_ClusterAction):
    name = "resume_database"
    summary = "resume PostgreSQL (SIGCONT)"

    def run(self, ctx: RunContext, params: Any) -> str:
        was = ctx.cluster.paused
        ctx.cluster.resume()
        return "SIGCONT to PostgreSQL's processes: it answers again" if was else "PostgreSQL was not paused"
