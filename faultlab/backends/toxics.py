"""The fault proxy's toxics (Toxiproxy's names) and the pipe that applies them to one direction of one link.

Why a module of its own: the proxy (``faultlab.backends.proxy``) owns sockets, links and their lifetime; this
module owns what happens to the bytes on the way, which is where the faults' semantics live and are tested.

The toxics, and the Toxiproxy toxic each maps to:

- ``latency_s`` ± ``jitter_s``: what the database sends is due that long after it arrived (``latency`` with its
  ``jitter``, downstream: a round trip gains it once). Each chunk draws its own jitter; order is kept, so a
  chunk drawn shorter than the one before it waits for it, as Toxiproxy's pipeline does.
- ``bandwidth_kb_s``: each direction is paced to that many KB (1000 bytes) a second (``bandwidth``'s ``rate``,
  on both streams), written in slices of at most 0.1 s worth, as Toxiproxy slices.
- ``limit_data``: a connection is closed (FIN both ways, not an RST) once that many bytes have passed through it,
  both directions counted together; the chunk that crosses the limit is cut at it (``limit_data``'s ``bytes``).
- ``blackhole``: nothing is forwarded either way, the connections stay open (``timeout`` with 0).
- ``reset_new``: each new connection is answered with an RST (``reset_peer``); the proxy applies it at accept.

Switching mid-stream: each chunk read from a socket takes the ``Faults`` value of that moment whole and keeps it
until it is delivered. A chunk already read when a toxic switches (waiting out its latency, or being paced) is
forwarded as before; every chunk read after the switch, on the connections already open as on new ones, is
treated as the new value says; no chunk sees half of a switch. ``limit_data`` counts an open connection's bytes
from the switch that set it (a new connection's from its opening), as Toxiproxy counts from when its toxic is
added; each switch of ``limit_data`` starts the count afresh.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["CHUNK", "Faults", "LimitCount", "LimitReached", "Pipe"]

CHUNK = 64 * 1024
QUEUED_CHUNKS = 16  # chunks read ahead of delivery, per direction of a link
PACE_SLICE_S = 0.1  # bandwidth: the most time's worth of bytes written at once


class LimitReached(Exception):
    """``limit_data``: this link's bytes reached the limit; the proxy closes it."""


@dataclass(frozen=True)
class Faults:
    """What the proxy does to the traffic now; a new value replaces the old one whole (0 or False: off)."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    bandwidth_kb_s: float = 0.0
    limit_data: int = 0
    blackhole: bool = False
    reset_new: bool = False
    limit_epoch: int = field(default=0, compare=False, repr=False)  # bumped by each switch of limit_data

    def switched(self, **changes: Any) -> Faults:
        """This value with ``changes`` applied; a switch of ``limit_data`` starts every link's count afresh."""
        epoch = self.limit_epoch + 1 if "limit_data" in changes else self.limit_epoch
        return replace(self, **changes, limit_epoch=epoch)

    def describe(self) -> str:
        """In words, as a report shows them."""
        on = []
        if self.latency_s or self.jitter_s:
            jitter = f" ± {self.jitter_s * 1000:g} ms" if self.jitter_s else ""
            on.append(f"latency {self.latency_s * 1000:g} ms{jitter}")
        on += [f"bandwidth {self.bandwidth_kb_s:g} KB/s"] if self.bandwidth_kb_s else []
        on += [f"close after {self.limit_data} B"] if self.limit_data else []
        on += ["blackhole"] if self.blackhole else []
        on += ["new connections reset"] if self.reset_new else []
        return ", ".join(on) or "no fault"

    def delay_s(self, rng: random.Random, *, downstream: bool) -> float:
        """How long a chunk read now waits before it is due: latency ± jitter, downstream only, never < 0."""
        if not downstream or not (self.latency_s or self.jitter_s):
            return 0.0
        return max(0.0, self.latency_s + rng.uniform(-self.jitter_s, self.jitter_s))

    def paced(self, data: bytes) -> Iterator[tuple[bytes, float]]:
        """``data`` in slices, each with the time to wait before writing it at the bandwidth (0: at once)."""
        if not self.bandwidth_kb_s:
            yield data, 0.0
            return
        rate = self.bandwidth_kb_s * 1000  # bytes a second
        size = max(1, int(rate * PACE_SLICE_S))
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            yield piece, len(piece) / rate


@dataclass
class LimitCount:
    """The bytes one link has passed toward ``limit_data``, and the switch (epoch) they count for."""

    epoch: int = -1
    passed: int = 0

    def allow(self, faults: Faults, size: int) -> tuple[int, bool]:
        """How many of ``size`` bytes may pass, and whether the link must close after them."""
        if not faults.limit_data or faults.limit_epoch < self.epoch:
            return size, False  # no limit, or a chunk read before the latest switch: forwarded as before
        if faults.limit_epoch != self.epoch:
            self.epoch, self.passed = faults.limit_epoch, 0
        allowed = min(size, faults.limit_data - self.passed)
        self.passed += allowed
        return allowed, self.passed >= faults.limit_data


class Pipe:
    """One direction of one link: ``read()`` takes chunks and the faults of their moment, ``deliver()`` forwards
    them in order, each when its toxics allow. Run both; ``deliver()`` raises ``LimitReached`` at the limit."""

    def __init__(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        *,
        downstream: bool,
        faults: Callable[[], Faults],
        limit: LimitCount,
        counts: MutableMapping[str, int],
        rng: random.Random,
    ) -> None:
        self._src, self._dst, self._downstream = src, dst, downstream
        self._faults, self._limit, self._counts, self._rng = faults, limit, counts, rng
        self._counter = "bytes_down" if downstream else "bytes_up"
        # Bounded: a sender outpacing a throttled or delayed delivery waits, as it would on a slow link (the
        # kernel's buffers fill), instead of the proxy holding whatever it pushes.
        self._due: asyncio.Queue[tuple[float, float, bytes, Faults] | None] = asyncio.Queue(maxsize=QUEUED_CHUNKS)

    async def read(self) -> None:
        loop = asyncio.get_running_loop()
        while chunk := await self._src.read(CHUNK):
            faults = self._faults()  # one read: this chunk's toxics, whole
            if faults.blackhole:
                self._counts["swallowed"] += len(chunk)
                continue
            delay = faults.delay_s(self._rng, downstream=self._downstream)
            await self._due.put((loop.time() + delay, delay, chunk, faults))
        await self._due.put(None)

    async def deliver(self) -> None:
        loop = asyncio.get_running_loop()
        while (item := await self._due.get()) is not None:
            at, delay, chunk, faults = item
            if (wait := at - loop.time()) > 0:
                await asyncio.sleep(wait)
            allowed, reached = self._limit.allow(faults, len(chunk))
            self._counts["delayed"] += allowed if delay else 0  # what is forwarded late, not what is cut off
            for piece, pace in faults.paced(chunk[:allowed]):
                if pace:
                    self._counts["throttled"] += len(piece)
                    await asyncio.sleep(pace)
                self._dst.write(piece)
                await self._dst.drain()
                self._counts[self._counter] += len(piece)
            if reached:
                raise LimitReached
        if self._dst.can_write_eof():
            self._dst.write_eof()
