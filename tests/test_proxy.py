"""The fault proxy between a client and a real PostgreSQL server (the user's, only read through it), and its
toxics (jitter, bandwidth, limit_data) between a client and an echo server, both on loopback."""

from __future__ import annotations

import os
import random
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url

from faultlab.actions.proxy import ProxyParams, SetProxy
from faultlab.backends.base import postgres_problem
from faultlab.backends.proxy import FaultProxy
from faultlab.backends.toxics import Faults
from faultlab.errors import BackendError
from faultlab.witnesses.proxy import Proxy
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


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_proxy_holds_no_loop_until_started_and_none_after_close() -> None:
    """A run's set-up can fail after its proxy is made and before it starts (or closes): a loop made then, with
    its selector's and self-pipe's descriptors, would be left open."""
    before = _open_fds()
    never_started = [FaultProxy("127.0.0.1", 9) for _ in range(3)]
    assert _open_fds() <= before, f"an unstarted proxy opened descriptors: {_open_fds() - before}"
    never_started[0].close()  # nothing to close, no error
    with pytest.raises(BackendError, match="not started"):
        never_started[1].drop_all()
    proxy = FaultProxy("127.0.0.1", 9).start()
    assert _open_fds() - before, "a started proxy listens and has a loop"
    proxy.close()
    assert _open_fds() <= before, f"left open after close: {_open_fds() - before}"
    assert not any(t.name == "lab-fault-proxy" for t in threading.enumerate())


# -- the toxics, through an echo server on loopback (no database needed) -------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[FaultProxy]:
    """A fault proxy in front of an echo server; its jitter drawn from a fixed seed."""
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads, server.block_on_close = True, False
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        with FaultProxy("127.0.0.1", server.server_address[1], seed=7) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()


def _open(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=3)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv(sock: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only if the proxy closed the connection first."""
    data = b""
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return data


def _echo_s(sock: socket.socket, size: int) -> float:
    start = time.monotonic()
    sock.sendall(b"x" * size)
    assert len(_recv(sock, size)) == size
    return time.monotonic() - start


def test_jitter_varies_each_round_trip_around_the_latency(echo: FaultProxy) -> None:
    with _open(echo) as sock:
        echo.set(latency_s=0.1, jitter_s=0.05)
        trips = [_echo_s(sock, 10) for _ in range(8)]
    assert all(0.05 <= trip < 0.15 + 0.08 for trip in trips), [f"{trip:.3f}" for trip in trips]
    assert max(trips) - min(trips) > 0.02, f"each chunk draws its own jitter: {[f'{t:.3f}' for t in trips]}"
    assert echo.stats().delayed == 80, echo.stats()
    rng = random.Random(1)
    draws = [Faults(latency_s=0.01, jitter_s=0.05).delay_s(rng, downstream=True) for _ in range(200)]
    assert min(draws) == 0.0 and max(draws) <= 0.06, "never below zero, never above latency + jitter"
    assert Faults(latency_s=0.1, jitter_s=0.05).delay_s(rng, downstream=False) == 0.0, "downstream only"


def test_bandwidth_paces_each_direction_of_an_open_connection_and_switches_off(echo: FaultProxy) -> None:
    with _open(echo) as sock:
        before = _echo_s(sock, 20_000)
        echo.set(bandwidth_kb_s=40)
        paced = _echo_s(sock, 20_000)  # 20 KB at 40 KB/s: 0.5 s up, the echo paced behind it
        throttled = echo.stats().throttled
        echo.set(bandwidth_kb_s=0)
        after = _echo_s(sock, 20_000)
    assert 0.45 <= paced < 1.5, f"20 KB at 40 KB/s each way took {paced:.3f} s"
    assert before < 0.2 and after < 0.2, (before, after)
    assert throttled == 40_000, f"both directions paced, nothing else: {throttled}"
    assert echo.stats().throttled == throttled, "switched off: nothing paced after"


def test_limit_data_closes_after_exactly_its_bytes_counted_from_the_switch(echo: FaultProxy) -> None:
    with _open(echo) as sock:
        _echo_s(sock, 5000)  # 10,000 bytes passed before the limit was set
        echo.set(limit_data=1000)
        assert echo.stats().open == 1, "setting the limit closes nothing by itself"
        sock.sendall(b"y" * 600)  # 600 up, then the echo's first 400 down reach 1000
        assert _recv(sock, 600) == b"y" * 400, "the chunk that crosses the limit is cut at it"
        assert sock.recv(1) == b"", "then the proxy closes: a FIN (no RST)"
    with _open(echo) as sock:  # a new connection counts from its opening
        sock.sendall(b"z" * 1000)
        assert _recv(sock, 1000) == b"", "the 1000 bytes up reach the limit: nothing comes back"
    stats = echo.stats()
    assert (stats.limit_closes, stats.resets, stats.open) == (2, 0, 0), stats
    echo.set(limit_data=0)
    with _open(echo) as sock:
        assert _echo_s(sock, 5000) < 1.0, "switched off"
    assert echo.stats().limit_closes == 2, echo.stats()


def test_a_chunk_read_before_a_switch_keeps_its_toxics(echo: FaultProxy) -> None:
    with _open(echo) as sock:
        echo.set(latency_s=0.3)
        start = time.monotonic()
        sock.sendall(b"ping")
        time.sleep(0.1)  # the echo is back at the proxy, due 0.3 s after it arrived
        echo.set(latency_s=0.0)
        assert _recv(sock, 4) == b"ping"
        in_flight = time.monotonic() - start
        after = _echo_s(sock, 4)
    assert 0.3 <= in_flight < 0.45, f"read before the switch, delayed as before it: {in_flight:.3f} s"
    assert after < 0.1, f"read after the switch: {after:.3f} s"


def test_set_proxy_switches_only_what_is_given_and_the_witness_counts_each_toxic(echo: FaultProxy) -> None:
    params = ProxyParams(latency_ms=50, jitter_ms=10, bandwidth_kb_s=100)
    assert params.changes() == {"latency_s": 0.05, "jitter_s": 0.01, "bandwidth_kb_s": 100}
    assert SetProxy().label(params) == "fault proxy: latency 50 ms, jitter ± 10 ms, bandwidth 100 KB/s"
    assert SetProxy().label(ProxyParams(limit_data=0, blackhole=False)) == "fault proxy: close after off, blackhole off"
    with pytest.raises(ValueError, match="set_proxy needs one of latency_ms"):
        ProxyParams()
    ctx: Any = SimpleNamespace(proxy=echo, marks={})
    SetProxy().run(ctx, params)
    SetProxy().run(ctx, ProxyParams(limit_data=3000))
    assert echo.faults == Faults(latency_s=0.05, jitter_s=0.01, bandwidth_kb_s=100, limit_data=3000)
    witness = Proxy()
    witness.before_step(ctx)
    with _open(echo) as sock:
        sock.sendall(b"w" * 2000)
        assert len(_recv(sock, 2000)) == 1000
    values = witness.observe(ctx)
    assert (values["proxy_delayed"], values["proxy_throttled"], values["proxy_limit_closes"]) == (1000, 3000, 1), values
    assert values["proxy_faults"] == "latency 50 ms ± 10 ms, bandwidth 100 KB/s, close after 3000 B", values
    assert "1 closed by limit_data" in Proxy.parts(values)[0], Proxy.parts(values)
    SetProxy().cleanup(ctx)
    assert echo.faults == Faults(), echo.faults
