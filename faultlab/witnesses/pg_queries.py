"""The statements the app's sessions are running now, as PostgreSQL sees them (``pg_stat_activity``): how many,
for how long the oldest has run, and its text. A slow query holds its connection for as long as it runs; this
is the database's side of that (the pool's checked-out count is the app's). Read on the lab's connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faultlab.plugins.registry import POSTGRESQL_ONLY, Kind, ObservationSpec, Unobservable, Witness, register_witness

if TYPE_CHECKING:
    from faultlab.plugins.context import RunContext

QUERY_CHARS = 200
# The app's role only (never the lab's own connections); the oldest running statement first.
ACTIVE_SQL = (
    "SELECT count(*), coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0),"
    f" coalesce((array_agg(left(query, {QUERY_CHARS}) ORDER BY query_start))[1], '')"
    " FROM pg_stat_activity WHERE datname = %(database)s AND usename = %(role)s AND state = 'active'"
    " AND pid <> pg_backend_pid()"
)


@register_witness
class PgQueries(Witness):
    name = "pg_queries"
    title = "the statements the app's sessions are running (pg_stat_activity)"
    backends = POSTGRESQL_ONLY
    observations = (
        ObservationSpec("pg_active", Kind.COUNT, "the app's sessions running a statement now"),
        ObservationSpec("pg_active_longest_s", Kind.NUMBER, "how long the oldest running statement has run, in s"),
        ObservationSpec("pg_active_query", Kind.TEXT, "the oldest running statement's text ('' when none runs)"),
    )

    def observe(self, ctx: RunContext) -> dict[str, Any]:
        backend = ctx.postgres
        with backend.readable() as why:  # no pause begins between the check and the read
            if why:
                raise Unobservable(why)
            active, longest, query = backend.watch(ACTIVE_SQL, {"database": backend.database, "role": backend.role})[0]
        return {"pg_active": int(active), "pg_active_longest_s": round(float(longest), 3), "pg_active_query": query}

    @classmethod
    def parts(cls, values: Mapping[str, Any]) -> list[str]:
        if not values.get("pg_active"):
            return []
        oldest = f"oldest {values['pg_active_longest_s']:.1f} s: {values['pg_active_query']}"
        return [f"pg running {values['pg_active']} ({oldest})"]
