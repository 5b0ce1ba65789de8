"""The pool's checked-out count, read from the harness's shared memory (the catalogue's ``pool`` witness reads
the same counters): a count that climbs with the collector off is a leak, and a collection read that leaks is
then sent until the pool runs out."""

from __future__ import annotations

import httpx

from faultlab.doctor.contract import NO_ENGINE, Check, CheckupContext, Exercised
from faultlab.doctor.report import Checked, Finding, NotRun
from faultlab.server import client

__all__ = ["PoolExhaustion", "PoolLeak"]

EXHAUST_MAX = 40  # requests at most, to find how many a leak needs to exhaust the pool
EXHAUST_TIMEOUT_S = 2.0  # a request that waits this long for a connection has found the pool empty


class PoolLeak(Check):
    """Checked-out connections that stay above the baseline after every request, with the collector off."""

    name = "connection leaks seen by the pool"

    def start(self, ctx: CheckupContext) -> None:
        if not ctx.live.pool:
            ctx.report.not_checked.append(NotRun(self.name, *NO_ENGINE))

    def operation(self, ctx: CheckupContext, exercised: Exercised, found: list[Finding]) -> list[Finding]:
        checked, pool_size = exercised.checked, ctx.live.pool_size
        if not checked.checked_out:
            return []  # no pool to read
        baseline, after = checked.checked_out[0], checked.checked_out[1:]
        if not after or min(after) <= baseline or after[-1] < after[0]:
            return []
        kept = after[-1] - baseline
        return [
            Finding(
                "connection leak",
                checked.operation,
                f"checked out {'→'.join(map(str, checked.checked_out))} over {len(after)} request(s) with the "
                f"collector off: {kept} connection(s) kept, about {kept / len(after):g} per request; a pool of "
                f"{pool_size if pool_size >= 0 else '?'} (+ its overflow) is soon empty unless the garbage "
                "collector happens to run (a session that is never closed)",
            )
        ]


class PoolExhaustion(Check):
    """With the collector still off, a collection read that leaks is sent again and again until a request
    fails or waits ``EXHAUST_TIMEOUT_S`` for a connection: how many requests it takes to empty the pool.
    A collection then gives the leaked connections back (and the waiting request its answer)."""

    name = "pool exhausted"

    def after_operations(self, ctx: CheckupContext) -> None:
        live, report = ctx.live, ctx.report
        leaking = {f.operation for f in report.findings if f.kind == "connection leak"}
        reads = [o for o in ctx.healthy_reads() if o.label in leaking]
        if not reads:
            return
        operation = reads[0]
        live.harness("gc")  # from what a collection leaves, as each operation was
        statuses: list[int] = []
        # A request given up on must not take the next one's connection with it.
        headers = {**live.headers, "connection": "close"}
        try:
            with client.fresh_connections(live.server.base_url, timeout_s=EXHAUST_TIMEOUT_S, headers=headers) as sender:
                for number in range(1, EXHAUST_MAX + 1):
                    try:
                        status: int | None = sender.request(operation.method, operation.path).status_code
                        answer = str(status)
                    except httpx.TimeoutException:
                        status, answer = None, f"no answer within {EXHAUST_TIMEOUT_S:g} s (waiting for a connection)"
                    except httpx.TransportError as exc:
                        status, answer = None, f"no answer ({exc})"
                    statuses.append(status or 0)
                    if status is None or status >= 500:
                        out = live.counters()
                        report.findings.append(
                            Finding(
                                "pool exhausted",
                                operation.label,
                                f"{number - 1} requests in a row emptied the pool: request {number} got {answer}, "
                                f"with {out.pool_checked_out if out else '?'} connections checked out (collector off)",
                            )
                        )
                        return
        finally:
            report.checked.append(Checked(f"{operation.label} until the pool runs out", statuses, []))
            live.harness("gc")
            live.settled()
