"""PostgreSQL's own count of the app's sessions idle in transaction (the catalogue's ``pg_activity`` witness):
left so after the requests, or sitting so for a while during one."""

from __future__ import annotations

from faultlab.doctor.contract import Check, CheckupContext, Exercised
from faultlab.doctor.report import Finding
from faultlab.names import POSTGRESQL_ONLY

__all__ = ["IDLE_DURING_MS", "IdleAfter", "IdleDuring"]

IDLE_DURING_MS = 500.0  # idle in transaction this long during a request (a glimpse between statements is not)


class IdleAfter(Check):
    """Sessions left idle in transaction once the requests are done."""

    name = "idle in transaction"
    backends = POSTGRESQL_ONLY

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        checked = exercised.checked
        idle = checked.idle_in_transaction
        if not idle or idle[-1] <= idle[0]:
            return []
        return [
            Finding(
                "idle in transaction",
                checked.operation,
                f"PostgreSQL's sessions idle in transaction after each request: {'→'.join(map(str, idle))}; each "
                "holds its locks and snapshot until the session is closed (a transaction that nothing ends)",
            )
        ]


class IdleDuring(Check):
    """A session that sat idle in transaction for ``IDLE_DURING_MS`` or more while the timed request ran (the
    sessions sampled every few ms beside the event loop's probe); once per operation with ``IdleAfter``'s."""

    name = "idle in transaction"
    backends = POSTGRESQL_ONLY

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        if not exercised.timed or exercised.idle_ms < IDLE_DURING_MS:
            return []
        if any(f.kind == "idle in transaction" for f in found):
            return []
        return [
            Finding(
                "idle in transaction",
                exercised.operation.label,
                f"during the request a session of the app sat idle in transaction for {exercised.idle_ms:g} ms "
                "(pg_stat_activity, sampled every few ms): the route keeps its transaction open while it waits on "
                "something else; commit (or read what it needs) before waiting",
            )
        ]
