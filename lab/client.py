"""HTTP to the server under test: each request on a fresh connection, bounded in count and time."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import httpx

__all__ = ["Outcome", "probe", "send_many"]

BODY_LIMIT = 300


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no HTTP answer
    body: str
    rows: int | None
    failure: str | None = None  # "timeout" or "transport"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _client(timeout_s: float, concurrency: int) -> httpx.Client:
    # A 500 makes uvicorn drop the keep-alive connection; a fresh connection per request keeps one server
    # error from turning into a client-side "connection reset" on the next request. The lab speaks plain
    # HTTP to loopback only: no certificates to load (15 ms a client) and no proxy from the environment.
    return httpx.Client(
        timeout=timeout_s,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0),
        headers={"connection": "close"},
        verify=False,
        trust_env=False,
    )


@functools.cache
def _prober() -> httpx.Client:
    """One client for every probe of the harness, made once."""
    return _client(5.0, 4)


def _one(client: httpx.Client, method: str, url: str, body: Any) -> Outcome:
    try:
        response = client.request(method, url, json=body)
    except httpx.TimeoutException as exc:
        return Outcome(None, f"no answer: {type(exc).__name__}", None, "timeout")
    except httpx.TransportError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}", None, "transport")
    text = response.text
    rows = None
    try:
        parsed = json.loads(text) if text else None
        rows = len(parsed) if isinstance(parsed, list) else None
    except ValueError:
        pass
    short = text if len(text) <= BODY_LIMIT else text[: BODY_LIMIT - 1] + "…"
    return Outcome(response.status_code, short, rows)


def send_many(
    base_url: str,
    method: str,
    path: str,
    body: Any,
    *,
    repeat: int,
    concurrency: int,
    timeout_s: float,
    after_each: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """``repeat`` requests, ``concurrency`` at a time; ``after_each`` runs between sequential requests."""
    url = base_url + path
    with _client(timeout_s, concurrency) as client:
        if concurrency == 1:
            outcomes = []
            for _ in range(repeat):
                outcomes.append(_one(client, method, url, body))
                if after_each is not None:
                    after_each(outcomes[-1])
            return outcomes
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lab-request")
        try:
            return list(pool.map(lambda _: _one(client, method, url, body), range(repeat)))
        finally:
            # On Ctrl+C, send nothing more; requests in flight end within their timeout.
            pool.shutdown(wait=True, cancel_futures=True)


def probe(base_url: str, path: str, *, method: str = "GET", timeout_s: float = 5.0) -> dict[str, Any]:
    """The harness's own routes; a failure here is the lab's problem, so it raises."""
    response = _prober().request(method, base_url + path, timeout=timeout_s)
    response.raise_for_status()
    return cast(dict[str, Any], response.json())
