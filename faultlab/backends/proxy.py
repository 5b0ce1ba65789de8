"""A TCP fault proxy between the app and its database: Toxiproxy's faults, small.

Toxiproxy is the reference for the faults and their names, but no Debian or PyPI package ships its server, so
the lab has this one: an asyncio loop in a thread of the lab's own, listening on a free port of 127.0.0.1
and forwarding each connection to the database. The app is given the proxy's port instead of the database's.

Faults are switched with ``set(...)``, which swaps one immutable ``Faults`` value (``faultlab.backends.toxics``
says what each does, which Toxiproxy toxic it maps to, and what an open connection sees when one switches
mid-stream: each chunk takes the value of the moment it was read, whole). ``reset_new`` answers each new
connection with an RST (``reset_peer``). ``drop_all()`` resets every open connection at once, as a failover or
a NAT table flush does. ``stats()`` counts what went through (bytes, connections, resets, bytes delayed and
throttled, connections closed by ``limit_data``) for a witness.

``with FaultProxy(host, port) as proxy:`` starts it; leaving the block closes every connection and stops
the thread, however the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from faultlab.backends.toxics import Faults, LimitCount, LimitReached, Pipe
from faultlab.errors import BackendError

__all__ = ["FaultProxy", "Faults", "ProxyStats"]

READY_DEADLINE_S = 5.0


@dataclass(frozen=True)
class ProxyStats:
    connections: int  # accepted since the start
    open: int  # open now
    resets: int  # connections the proxy reset (reset_new, drop_all)
    bytes_up: int  # forwarded from the app to the database
    bytes_down: int  # forwarded from the database to the app
    swallowed: int  # bytes the blackhole ate
    delayed: int  # bytes held back by latency or jitter
    throttled: int  # bytes paced by the bandwidth
    limit_closes: int  # connections closed by limit_data


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    limit: LimitCount = field(default_factory=LimitCount)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN: SO_LINGER with a zero timeout, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, seed: int | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._faults = Faults()
        self._counts = dict.fromkeys(
            ("connections", "resets", "bytes_up", "bytes_down", "swallowed", "delayed", "throttled", "limit_closes"), 0
        )
        self._rng = random.Random(seed)  # jitter's draws; a seed makes them repeatable
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        # Made by start(), closed by close(): a proxy that is never started (its run's set-up failed) holds nothing.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @classmethod
    def in_front_of(cls, url: str) -> FaultProxy:
        """A proxy (not started) to the server of a database URL."""
        from sqlalchemy import make_url

        server = make_url(url)
        return cls(server.host or "127.0.0.1", server.port or 5432)

    def url_through(self, url: str) -> str:
        """The same database URL, reaching its server through this proxy (once started)."""
        from sqlalchemy import make_url

        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    # -- from the lab's threads -------------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        return self.start()

    def start(self) -> FaultProxy:
        """Listening once this returns; ``close()`` (or leaving the ``with`` block) stops it."""
        if self._loop is not None:
            raise BackendError("a fault proxy starts once; make another")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lab-fault-proxy", daemon=True)
        try:
            self._thread.start()
            self._call(self._start())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set(self, **faults: Any) -> Faults:
        """Switch faults on or off (``set(latency_s=0.2)``, ``set(blackhole=False)``); the others stay."""
        self._faults = self._faults.switched(**faults)  # one assignment: atomic for every reader
        return self._faults

    @property
    def faults(self) -> Faults:
        return self._faults

    def drop_all(self) -> int:
        """Reset every open connection, both ways, at once; how many there were."""
        dropped: int = self._call(self._drop_all())
        return dropped

    def stats(self) -> ProxyStats:
        return ProxyStats(open=len(self._links), **self._counts)

    def close(self) -> None:
        """Stop listening, reset every connection, end the thread and close the loop; nothing if never started."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._stop())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(READY_DEADLINE_S)
        if not thread.is_alive() and not loop.is_closed():
            loop.close()

    def _call(self, coro: Any) -> Any:
        if self._loop is None:
            coro.close()  # never awaited: closed, so Python does not warn about it
            raise BackendError("the fault proxy is not started")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(READY_DEADLINE_S)
        except TimeoutError as exc:
            raise BackendError(f"the fault proxy did not answer within {READY_DEADLINE_S:g} s") from exc

    # -- in the proxy's loop ----------------------------------------------------------------------------
    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._drop_all(count=False)
        await asyncio.gather(*self._handlers, return_exceptions=True)  # nothing left pending in the loop

    async def _drop_all(self, *, count: bool = True) -> int:
        links = list(self._links)
        for link in links:
            _reset(link.client)
            if link.upstream is not None:
                link.upstream.transport.abort()
            for task in link.tasks:
                task.cancel()
        if count:
            self._counts["resets"] += len(links)
        return len(links)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._counts["connections"] += 1
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        if self._faults.reset_new:
            self._counts["resets"] += 1
            _reset(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        limited = False
        try:
            up_reader, link.upstream = await asyncio.open_connection(*self.upstream)
            pipes = [self._pipe(reader, link.upstream, link, False), self._pipe(up_reader, writer, link, True)]
            link.tasks = [asyncio.create_task(step()) for pipe in pipes for step in (pipe.read, pipe.deliver)]
            done, _ = await asyncio.wait(link.tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:  # a reset by either end ends the link; retrieved, so asyncio does not log it
                if not task.cancelled():
                    limited |= isinstance(task.exception(), LimitReached)
        except OSError:
            pass  # the database refused: the app sees its connection closed
        finally:
            self._links.discard(link)
            for task in link.tasks:
                task.cancel()
            if limited:  # limit_data closes (FIN both ways), what was written having been drained
                self._counts["limit_closes"] += 1
            for end in (writer, link.upstream):
                if end is not None and limited:
                    end.close()
                elif end is not None:
                    end.transport.abort()

    def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link, downstream: bool) -> Pipe:
        """One direction of ``link``, reading the proxy's faults as they are when each chunk arrives."""
        faults, counts, rng = (lambda: self._faults), self._counts, self._rng
        return Pipe(src, dst, downstream=downstream, faults=faults, limit=link.limit, counts=counts, rng=rng)
