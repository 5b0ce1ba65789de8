"""One step's evidence in a line of words, for the terminal and the report's table."""

from __future__ import annotations

from lab.observations import Observation
from lab.results import Check

__all__ = ["check_line", "evidence_line", "evidence_parts"]

ERROR_CHARS = 110


def evidence_line(obs: Observation) -> str:
    return " · ".join(evidence_parts(obs))


def evidence_parts(obs: Observation) -> list[str]:
    """The facts worth a glance, most telling first: what was done, what came back, what the witnesses saw."""
    parts: list[str] = []
    if obs.action:
        parts.append(obs.action)
    if obs.requests is not None:
        parts.append(_statuses(obs))
    if obs.rows is not None:
        parts.append(f"{obs.rows} row" + ("" if obs.rows == 1 else "s"))
    if obs.error:
        first = obs.error.splitlines()[0]
        more = len(obs.error.splitlines()) - 1
        text = first if len(first) <= ERROR_CHARS else first[: ERROR_CHARS - 1] + "…"
        parts.append(f"server: {text}" + (f" (+{more} other)" if more else ""))
    if obs.pool_checked_out_series is not None:
        parts.append("pool out " + "→".join(map(str, obs.pool_checked_out_series)))
    elif obs.pool_checked_out is not None:
        parts.append(f"pool out {obs.pool_checked_out}")
    if obs.db_fds is not None:
        deleted = f" ({obs.db_fds_deleted} deleted)" if obs.db_fds_deleted else ""
        parts.append(f"fds {obs.db_fds}{deleted}")
    if obs.pg_connections is not None:
        parts.append(f"pg sessions {obs.pg_connections} ({obs.pg_idle_in_transaction} idle in transaction)")
    if obs.pg_tcp is not None:
        parts.append(f"tcp {obs.pg_tcp}")
    if obs.db_exists is False:
        parts.append("db file missing")
    elif obs.db_size == 0:
        parts.append("db file empty (0 B)")
    return parts


def _statuses(obs: Observation) -> str:
    counts = ", ".join(f"{code}×{n}" if n > 1 else code for code, n in (obs.statuses or {}).items())
    extras = [f"{n} {label}" for n, label in ((obs.timeouts, "timed out"), (obs.transport_errors, "reset")) if n]
    return ", ".join(filter(None, [counts, *extras])) or "no answer"


def check_line(check: Check) -> str:
    if check.passed:
        return f"✅ {check.observation} {check.expected}"
    observed = check.observed
    if isinstance(observed, str) and len(observed) > 60:
        observed = observed[:59] + "…"
    return f"❌ {check.observation} {check.expected} (saw {observed!r})"
