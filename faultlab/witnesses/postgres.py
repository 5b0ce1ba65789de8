"""PostgreSQL's own view of the run's database (``pg_stat_activity``), and the TCP connections from the
server to PostgreSQL that the operating system sees. Read on the lab's connection, never the app's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import POSTGRESQL_ONLY, Kind, ObservationSpec, Unobservable, Witness, register_witness

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext


@register_witness
class PgActivity(Witness):
    name = "pg_activity"
    title = "PostgreSQL's sessions on the run's database (pg_stat_activity)"
    backends = POSTGRESQL_ONLY
    observations = (
        ObservationSpec("pg_connections", Kind.COUNT, "sessions on the run's database"),
        ObservationSpec("pg_idle_in_transaction", Kind.COUNT, "of those, sessions idle in a transaction"),
        ObservationSpec("pg_waiting_on_lock", Kind.COUNT, "of those, sessions waiting for a lock"),
    )
    sampled = ("pg_idle_in_transaction",)
    charts = (
        ("pg_idle_in_transaction", "PostgreSQL sessions idle in transaction"),
        ("pg_connections", "PostgreSQL sessions on the run's database"),
    )

    def sample(self, ctx: RunContext) -> dict[str, int | float]:
        return {"pg_idle_in_transaction": self.observe(ctx)["pg_idle_in_transaction"]}

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        with ctx.postgres.readable() as why:  # no pause begins between the check and the read
            if why:
                raise Unobservable(why)  # stopped or paused by the experiment: asking would fail, or hang
            total, idle_in_transaction, waiting = ctx.postgres.activity()
        return {"pg_connections": total, "pg_idle_in_transaction": idle_in_transaction, "pg_waiting_on_lock": waiting}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        if (total := values.get("pg_connections")) is None:
            return []
        waiting = f", {values['pg_waiting_on_lock']} waiting on a lock" if values.get("pg_waiting_on_lock") else ""
        return [f"pg sessions {total} ({values.get('pg_idle_in_transaction')} idle in transaction{waiting})"]


@register_witness
class PgTcp(Witness):
    name = "pg_tcp"
    title = "the server's TCP connections to PostgreSQL (the operating system)"
    backends = POSTGRESQL_ONLY
    observations = (ObservationSpec("pg_tcp", Kind.COUNT, "the server's TCP connections to PostgreSQL"),)
    charts = (("pg_tcp", "TCP connections to PostgreSQL"),)

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        import psutil

        port = ctx.database_port  # the app's end of its link (PgBouncer's or the proxy's port, when in between)
        total = 0
        for pid in ctx.server.pids():
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            except psutil.AccessDenied as exc:
                raise Unobservable(f"the operating system does not show this process's sockets: {exc}") from exc
            total += sum(
                1 for c in connections if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
            )
        return {"pg_tcp": total}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        return [] if values.get("pg_tcp") is None else [f"tcp {values['pg_tcp']}"]
