"""A shared session: errors that appear only under concurrency. An ``AsyncSession`` (or a connection) used by
several requests at once is refused by SQLAlchemy or the driver, while one request at a time never shows it;
so each create that answered 2xx one at a time is sent ``AT_ONCE`` times at once, as in production."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from faultlab.doctor.contract import ANSWER_FINDINGS, Check, CheckupContext
from faultlab.doctor.openapi import Operation
from faultlab.doctor.report import Checked, Finding, Location
from faultlab.doctor.where import locate
from faultlab.plugins.observations import ExceptionRecord
from faultlab.server import client

__all__ = ["MARKS", "SharedSession"]

AT_ONCE = 10
TIMEOUT_S = 5.0
# What SQLAlchemy and the drivers say when two tasks use one session or connection at once.
MARKS = (
    "IllegalStateChangeError",
    "concurrent operations are not permitted",
    "another operation is in progress",
    "is already in progress",
)
FIX = (
    "one session per request (a dependency that yields a new session: async with sessionmaker() as s: yield s), "
    "one per concurrent task (never asyncio.gather over one session); share the engine and the sessionmaker only"
)


class SharedSession(Check):
    """Each create that answered 2xx one at a time, sent ``AT_ONCE`` times at once: failures that name a
    session or connection used concurrently are a finding of their own."""

    name = "errors under concurrency (shared session)"

    def end(self, ctx: CheckupContext) -> None:
        failing = {o for f in ctx.report.findings if f.kind in ANSWER_FINDINGS for o in f.operations}
        fine = {c.operation for c in ctx.report.checked if c.statuses and 200 <= c.statuses[0] < 300}
        fine -= {c.operation for c in ctx.report.checked if any(s >= 500 for s in c.statuses)} | failing
        for operation in ctx.plan:
            if operation.method == "POST" and not operation.path_params and operation.label in fine:
                self._at_once(ctx, operation)

    def _at_once(self, ctx: CheckupContext, operation: Operation) -> None:
        live = ctx.live
        request = live.values.request(operation).httpx_kwargs() if live.values is not None else {}
        live.errors.read_new()
        with client.fresh_connections(
            live.server.base_url, timeout_s=TIMEOUT_S, concurrency=AT_ONCE, headers=live.headers
        ) as sender:

            def send(_: int) -> int:
                try:
                    return sender.request(operation.method, operation.url(), **request).status_code
                except httpx.TransportError:
                    return 0

            with ThreadPoolExecutor(max_workers=AT_ONCE, thread_name_prefix="doctor-at-once") as pool:
                statuses = list(pool.map(send, range(AT_ONCE)))
        live.settled()
        records = live.errors.read_new()
        ctx.report.checked.append(Checked(f"{operation.label}, {AT_ONCE} at once", statuses, []))
        concurrent = [record for record in records if any(mark in str(record) for mark in MARKS)]
        failed = [status for status in statuses if status >= 500 or status == 0]
        if not failed or not concurrent:
            return
        location, unlocated, held = _where(ctx, concurrent)
        ctx.report.findings.append(
            Finding(
                "shared session",
                operation.label,
                f"{len(failed)} of {AT_ONCE} sent at once failed ({client_statuses(statuses)}), while one at a time it "
                f"answered 2xx: {str(concurrent[0]).split(chr(10), 1)[0][:300]}; one session (or connection) was used "
                f"by concurrent requests, which SQLAlchemy and the drivers refuse{held}. Fix: {FIX}",
                location=location,
                unlocated=unlocated,
            )
        )


def _where(ctx: CheckupContext, concurrent: list[ExceptionRecord]) -> tuple[Location | None, str, str]:
    """The app's line nearest the first refusal's raise (as a server error's), and, for the evidence, the sessions
    the app's module globals hold (``faultlab.inside.identity.module_sessions``): named, never given a line."""
    held = ctx.live.sites().get("module_sessions", [])
    shared = f" (a session made once and held by a module global: {', '.join(held)})" if held else ""
    role = "the app's line nearest the raise, in a request that found its session in use by another"
    seen = next((record.where for record in concurrent if record.where is not None), None)
    if (location := locate(seen, ctx.app_dir, role)) is not None:
        return location, "", shared
    return None, f"no frame of the app's code in the refusals' tracebacks{shared}", shared


def client_statuses(statuses: list[int]) -> str:
    """``201×3, 500×7``: how the burst was answered (0: no answer)."""
    counted: dict[int, int] = {}
    for status in statuses:
        counted[status] = counted.get(status, 0) + 1
    return ", ".join(f"{status or 'no answer'}×{n}" for status, n in sorted(counted.items()))
