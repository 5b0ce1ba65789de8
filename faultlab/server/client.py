"""HTTP to the server under test: each request on a fresh connection, bounded in count and time."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import httpx

__all__ = ["Load", "Outcome", "Request", "fresh_connections", "kept_alive", "probe", "send_many"]

BODY_LIMIT = 300


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no HTTP answer
    body: str
    rows: int | None
    elapsed_s: float
    failure: str | None = None  # "timeout" or "transport"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None


def _client(timeout_s: float, concurrency: int) -> httpx.Client:
    return fresh_connections(timeout_s=timeout_s, concurrency=concurrency)


def fresh_connections(
    base_url: str = "", *, timeout_s: float, concurrency: int = 1, headers: Mapping[str, str] | None = None
) -> httpx.Client:
    """A client that opens a connection per request.

    An exception that escapes an app makes uvicorn drop the keep-alive connection after the 500; a fresh
    connection per request keeps one server error from turning into a client-side "connection reset" on the
    next request. The lab speaks plain HTTP to loopback only: no certificates to load (15 ms a client) and
    no proxy from the environment.
    """
    return httpx.Client(
        base_url=base_url,
        timeout=timeout_s,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0),
        headers={"connection": "close", **(headers or {})},
        verify=False,
        trust_env=False,
    )


def kept_alive(base_url: str, *, timeout_s: float) -> httpx.Client:
    """A client that keeps its connection: for probes timed one after another, where opening a connection each
    time would be timed too. Plain HTTP to loopback, as ``fresh_connections``."""
    return httpx.Client(base_url=base_url, timeout=timeout_s, verify=False, trust_env=False)


@functools.cache
def _prober() -> httpx.Client:
    """One client for every call to the harness, made once."""
    return _client(5.0, 4)


def _one(client: httpx.Client, request: Request) -> Outcome:
    started = time.monotonic()
    try:
        response = client.request(request.method, request.url, json=request.body, headers=request.headers)
    except httpx.TimeoutException as exc:
        return Outcome(None, f"no answer: {type(exc).__name__}", None, time.monotonic() - started, "timeout")
    except httpx.TransportError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}", None, time.monotonic() - started, "transport")
    elapsed = time.monotonic() - started
    text = response.text
    rows = None
    try:
        parsed = json.loads(text) if text else None
        rows = len(parsed) if isinstance(parsed, list) else None
    except ValueError:
        pass
    short = text if len(text) <= BODY_LIMIT else text[: BODY_LIMIT - 1] + "…"
    return Outcome(response.status_code, short, rows, elapsed)


def send_many(
    request: Request,
    *,
    repeat: int,
    concurrency: int,
    timeout_s: float,
    interval_s: float = 0.0,
    after_each: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """``repeat`` requests, ``concurrency`` at a time; ``after_each`` runs between sequential requests."""
    with _client(timeout_s, concurrency) as client:
        if concurrency == 1:
            outcomes = []
            for number in range(repeat):
                if number and interval_s:
                    time.sleep(interval_s)
                outcomes.append(_one(client, request))
                if after_each is not None:
                    after_each(outcomes[-1])
            return outcomes
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lab-request")
        try:
            return list(pool.map(lambda _: _one(client, request), range(repeat)))
        finally:
            # On Ctrl+C, send nothing more; requests in flight end within their timeout.
            pool.shutdown(wait=True, cancel_futures=True)


class Load:
    """``clients`` threads sending ``request`` in a loop until stopped or ``max_requests`` are sent.

    ``with Load(...) as load:`` starts it and returns once every client has sent its first request; leaving
    the block stops it, and every request in flight ends within ``timeout_s``.
    """

    ARRIVAL_S = 0.05  # time for the first requests to reach the server before the foreground begins

    def __init__(self, request: Request, *, clients: int, max_requests: int, timeout_s: float) -> None:
        self.request = request
        self.clients = min(clients, max_requests)
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.outcomes: list[Outcome] = []
        self._sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"lab-load-{i}") for i in range(self.clients)]

    def _take_turn(self) -> bool:
        with self._lock:
            if self._stop.is_set() or self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _loop(self) -> None:
        with _client(self.timeout_s, 1) as client:
            while self._take_turn():
                outcome = _one(client, self.request)
                with self._lock:
                    self.outcomes.append(outcome)

    def __enter__(self) -> Load:
        try:
            for thread in self._threads:
                thread.start()
            deadline = time.monotonic() + 1.0
            while self._sent < self.clients and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(self.ARRIVAL_S)
        except BaseException:  # Ctrl+C while starting: the clients already sending stop too
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:  # started
                thread.join()


def probe(base_url: str, path: str, *, method: str = "GET", timeout_s: float = 5.0) -> dict[str, Any]:
    """The harness's own routes; a failure here is the lab's problem, so it raises."""
    response = _prober().request(method, base_url + path, timeout=timeout_s)
    response.raise_for_status()
    return cast(dict[str, Any], response.json())
