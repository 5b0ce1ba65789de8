"""The fault proxy between a client and a real PostgreSQL server (the user's, only read through it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url

from faultlab.backends.base import postgres_problem
from faultlab.backends.proxy import FaultProxy
from tests.catalogue_runs import POSTGRES_URL


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(problem)
    url = make_url(POSTGRES_URL)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


def _connect(proxy: FaultProxy, **options: Any) -> psycopg.Connection[Any]:
    url = make_url(POSTGRES_URL).set(host="127.0.0.1", port=proxy.port)
    conninfo = url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(conninfo, autocommit=True, **options)


def _round_trip_s(conn: psycopg.Connection[Any]) -> float:
    start = time.monotonic()
    conn.execute("SELECT 1").fetchone()
    return time.monotonic() - start


def test_passes_traffic_through_and_counts_it(proxy: FaultProxy) -> None:
    with _connect(proxy) as conn:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
        stats = proxy.stats()
        assert (stats.connections, stats.open, stats.resets) == (1, 1, 0), stats
        assert stats.bytes_up > 0 and stats.bytes_down > 0, stats
    deadline = time.monotonic() + 2
    while proxy.stats().open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.stats().open == 0, "a closed client leaves no link open"


def test_latency_applies_to_connections_already_open_and_switches_off(proxy: FaultProxy) -> None:
    with _connect(proxy) as conn:
        before = _round_trip_s(conn)
        proxy.set(latency_s=0.2)
        slowed = _round_trip_s(conn)
        proxy.set(latency_s=0.0)
        after = _round_trip_s(conn)
    assert 0.2 <= slowed < 0.2 + 0.15, f"one round trip gains the latency once: {slowed:.3f} s"
    assert before < 0.1 and after < 0.1, (before, after)


def test_blackhole_hangs_a_query_until_drop_all_resets_it(proxy: FaultProxy) -> None:
    conn = _connect(proxy)
    failure: list[BaseException] = []

    def query() -> None:
        try:
            conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            failure.append(exc)

    proxy.set(blackhole=True)
    waiting = threading.Thread(target=query)
    waiting.start()
    waiting.join(1.0)
    assert waiting.is_alive(), "a blackholed query answers nothing and fails nothing"
    assert proxy.drop_all() == 1
    waiting.join(2.0)
    conn.close()
    assert not waiting.is_alive() and failure, "the reset ends the wait with an error"
    stats = proxy.stats()
    assert stats.swallowed > 0 and stats.resets == 1, stats


def test_drop_all_breaks_idle_connections_and_reset_new_refuses_new_ones(proxy: FaultProxy) -> None:
    conns = [_connect(proxy) for _ in range(3)]
    assert proxy.drop_all() == 3
    for conn in conns:
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
    proxy.set(reset_new=True)
    with pytest.raises(psycopg.OperationalError):
        _connect(proxy, connect_timeout=2)
    assert proxy.stats().resets == 4, proxy.stats()


def test_nothing_outlives_the_block() -> None:
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(problem)
    url = make_url(POSTGRES_URL)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        conn = _connect(proxy)
        port = proxy.port
    assert not any(t.name == "lab-fault-proxy" for t in threading.enumerate())
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")  # its link was reset when the proxy stopped
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
