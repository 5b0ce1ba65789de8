"""The pool's checked-out count, read from the harness's shared memory (the catalogue's ``pool`` witness reads
the same counters): a count that climbs with the collector off is a leak, and a collection read that leaks is
then sent until the pool runs out."""

from __future__ import annotations

from collections import Counter

import httpx

from faultlab.doctor.contract import NO_ENGINE, Check, CheckupContext, Exercised
from faultlab.doctor.report import Checked, Finding, Location, NotRun
from faultlab.doctor.where import locate
from faultlab.server import client

__all__ = ["PoolExhaustion", "PoolLeak", "leak_cause"]

EXHAUST_MAX = 40  # requests at most, to find how many a leak needs to exhaust the pool
EXHAUST_TIMEOUT_S = 2.0  # a request that waits this long for a connection has found the pool empty


class PoolLeak(Check):
    """Checked-out connections that stay above the baseline after every request, with the collector off; at
    the line of the user's code that took them (or the dependency that gave the route its session and never
    closes it), and the operations that share one cause reported as one finding."""

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
        location, taken = _cause(ctx, exercised)
        return [
            Finding(
                "connection leak",
                checked.operation,
                f"checked out {'→'.join(map(str, checked.checked_out))} over {len(after)} request(s) with the "
                f"collector off: {kept} connection(s) kept, about {kept / len(after):g} per request; a pool of "
                f"{pool_size if pool_size >= 0 else '?'} (+ its overflow) is soon empty unless the garbage "
                f"collector happens to run (a session that is never closed){taken}",
                location=location,
            )
        ]

    def end(self, ctx: CheckupContext) -> None:
        """One finding per cause: the operations whose leaked connections came from the same line join the first."""
        first: dict[tuple[str, int], Finding] = {}
        kept: list[Finding] = []
        for finding in ctx.report.findings:
            where = finding.location
            if finding.kind != "connection leak" or where is None:
                kept.append(finding)
                continue
            joined = first.setdefault((where.path, where.line), finding)
            if joined is finding:
                kept.append(finding)
            else:
                joined.operations.append(finding.operation)
        for finding in first.values():
            if len(finding.operations) > 1:
                finding.evidence += f"; the same cause leaks on {', '.join(finding.operations[1:])} too"
        ctx.report.findings[:] = kept


def leak_cause(findings: list[Finding], operation: str) -> Location | None:
    """The line a connection leak on this operation came from, if one was found: what empties the pool."""
    return next((f.location for f in findings if f.kind == "connection leak" and operation in f.operations), None)


def _cause(ctx: CheckupContext, exercised: Exercised) -> tuple[Location | None, str]:
    """The line most of the kept connections came from: the dependency that returned the route's session (a
    plain function: nothing closes what it returns), else where the connection was checked out; and, for the
    evidence, where they were checked out when the cause is the dependency."""
    causes: Counter[tuple[str, int]] = Counter()
    found: dict[tuple[str, int], tuple[Location, str]] = {}
    for entry in exercised.leak_sites:
        taken = (entry.get("checked_out_at") or [None])[0]
        provider = entry.get("session_from")
        if provider is not None:
            where = locate(provider, ctx.app_dir, "returns the route's session: nothing closes it after the response")
        else:
            where = locate(taken, ctx.app_dir, "checked out here and never given back")
        if where is None:
            continue
        shown = locate(taken, ctx.app_dir) if provider is not None else None
        key = (where.path, where.line)
        causes[key] += 1
        found.setdefault(key, (where, f"; the connections were checked out at {shown}" if shown else ""))
    if not causes:
        return None, ""
    return found[causes.most_common(1)[0][0]]


class PoolExhaustion(Check):
    """With the collector still off, a collection read that leaks is sent again and again until a request
    fails or waits ``EXHAUST_TIMEOUT_S`` for a connection: how many requests it takes to empty the pool.
    A collection then gives the leaked connections back (and the waiting request its answer)."""

    name = "pool exhausted"

    def after_operations(self, ctx: CheckupContext) -> None:
        live, report = ctx.live, ctx.report
        leaking = {o for f in report.findings if f.kind == "connection leak" for o in f.operations}
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
                                location=leak_cause(report.findings, operation.label),
                            )
                        )
                        return
        finally:
            report.checked.append(Checked(f"{operation.label} until the pool runs out", statuses, []))
            live.harness("gc")
            live.settled()
