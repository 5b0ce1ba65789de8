"""What the lab records after each step: one flat, named record, so expectations can name its fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OBSERVABLE", "Observation", "ServerException"]


class ServerException(BaseModel):
    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.type.rsplit('.', 1)[-1]}: {self.message}"


class Observation(BaseModel):
    """Evidence after one step. ``None`` means "not applicable to this step", never "zero"."""

    model_config = ConfigDict(extra="forbid")

    # HTTP, from the client's side
    requests: int | None = Field(None, description="requests sent in this step")
    status: int | None = Field(None, description="the HTTP status, when every response had the same one")
    statuses: dict[str, int] | None = Field(None, description="how many responses had each status")
    ok: int | None = Field(None, description="2xx responses")
    server_errors: int | None = Field(None, description="5xx responses")
    timeouts: int | None = Field(None, description="requests that got no answer before the step's timeout")
    transport_errors: int | None = Field(None, description="requests that failed below HTTP (connection reset)")
    first_failure_at: int | None = Field(None, description="1-based number of the first non-2xx response")
    rows: int | None = Field(None, description="items in the last response, when it is a JSON list")
    body: str | None = Field(None, description="the last response's body, shortened")
    # The server's own view
    error: str | None = Field(None, description="server-side exceptions in this step, distinct, one per line")
    exceptions: int | None = Field(None, description="server-side exceptions in this step")
    pool_checked_out: int | None = Field(None, description="connections checked out of the pool")
    pool_checked_out_peak: int | None = Field(None, description="highest checked-out count sampled in the step")
    pool_checked_out_series: list[int] | None = Field(None, description="checked-out count after each request")
    pool_overflow: int | None = Field(None, description="connections opened beyond pool_size")
    # The operating system's view
    db_fds: int | None = Field(None, description="the server's open file descriptors on the database file")
    db_fds_deleted: int | None = Field(None, description="of those, descriptors on a deleted file")
    db_fds_series: list[int] | None = Field(None, description="db_fds after each request")
    db_exists: bool | None = Field(None, description="the database file exists")
    db_size: int | None = Field(None, description="the database file's size in bytes")
    pg_tcp: int | None = Field(None, description="the server's TCP connections to PostgreSQL")
    # PostgreSQL's own view of the run's database
    pg_connections: int | None = Field(None, description="sessions on the run's database (pg_stat_activity)")
    pg_idle_in_transaction: int | None = Field(None, description="of those, sessions idle in a transaction")
    # Actions
    action: str | None = Field(None, description="what an action did, in words")
    duration_s: float | None = Field(None, description="wall time of the step")

    def short(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


OBSERVABLE: frozenset[str] = frozenset(Observation.model_fields)
# Witnesses that exist on one backend only; an expectation on them is judged only there.
ONLY_ON: dict[str, str] = {
    **dict.fromkeys(("db_fds", "db_fds_deleted", "db_fds_series", "db_exists", "db_size"), "sqlite"),
    **dict.fromkeys(("pg_tcp", "pg_connections", "pg_idle_in_transaction"), "postgresql"),
}


def applies(observation: str, backend: str) -> bool:
    return ONLY_ON.get(observation, backend) == backend
