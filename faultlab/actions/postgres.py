"""PostgreSQL-only actions, done on the lab's administrator connection: end the app's sessions as a
database restart (or a failover, or a proxy's idle timeout) would; give the run's role a connection budget.
psycopg is imported when one runs: listing the catalogue needs none of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from faultlab.plugins.registry import POSTGRESQL_ONLY, Action, NoParams, register_action

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


GONE_DEADLINE_S = 5.0


@register_action
class TerminateBackends(Action):
    name = "terminate_backends"
    summary = "end the app's database sessions (pg_terminate_backend)"
    backends = POSTGRESQL_ONLY

    def run(self, ctx: RunContext, params: Any) -> str:
        ended, left = ctx.postgres.terminate_app_sessions(GONE_DEADLINE_S)
        sessions = f"{ended} database session{'' if ended == 1 else 's'}"
        still = f"; {left} still listed after {GONE_DEADLINE_S:g} s" if left else ""
        return f"terminated {sessions} of the app, as a restart of PostgreSQL would{still}"


class LimitParams(NoParams):
    limit: int = Field(ge=1, le=100)


@register_action
class LimitConnections(Action):
    name = "limit_connections"
    summary = "limit the app's role to a number of connections"
    backends = POSTGRESQL_ONLY
    Params = LimitParams

    def label(self, params: LimitParams) -> str:
        return f"ALTER ROLE ... CONNECTION LIMIT {params.limit}"

    def run(self, ctx: RunContext, params: LimitParams) -> str:
        from psycopg import sql

        backend = ctx.postgres
        backend.query(
            sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(sql.Identifier(backend.role), sql.Literal(params.limit))
        )
        return f"the app's role may open at most {params.limit} connections (new ones beyond it are refused)"
