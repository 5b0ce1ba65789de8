"""Where the event loop was held: while armed, a thread of the harness looks at the loop thread's stack every
few milliseconds (``sys._current_frames``, from outside the loop: a blocked loop cannot answer for itself) and
counts the innermost frame of the app's code it finds there (``faultlab.inside.sites``). A loop that waits for
work is in the selector, in the standard library, and counts for nothing; one blocked by ``time.sleep`` or a
synchronous query in an ``async def`` route is at that line of the route. Two frames are kept: the innermost
of the app's (what blocks) and the innermost ``async def`` of the app's (the coroutine that never yields:
where the fix goes). A loop blocked inside one of SQLAlchemy's greenlets (sync work under ``run_sync``) is
seen at its innermost frame only: another thread's greenlets cannot be walked from here.

Only the doctor arms it, around the one request that confirms a block, and only when it asked for sites
(``FAULTLAB_SITES``); the catalogue's runs never start the thread.
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
from collections import Counter
from typing import Any

from faultlab.inside.sites import Site, describe, user_frames

__all__ = ["LoopSampler"]

INTERVAL_S = 0.002
MAX_SAMPLES = 5000  # at most 10 s of samples a window: an armed sampler nobody reads stops counting


class LoopSampler:
    def __init__(self) -> None:
        self.loop_thread: int | None = None
        self._armed = threading.Event()
        self._lock = threading.Lock()
        self._seen: Counter[tuple[Site | None, Site]] = Counter()
        self._samples = 0
        self._thread: threading.Thread | None = None

    def arm(self) -> None:
        """Called on the event loop (the route that arms it): that thread is the one to watch."""
        self.loop_thread = threading.get_ident()
        with self._lock:
            self._seen.clear()
            self._samples = 0
        self._armed.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="faultlab-loop-sampler", daemon=True)
            self._thread.start()

    def read(self) -> dict[str, Any]:
        """What the window saw, most frequent first, and the window closed."""
        self._armed.clear()
        with self._lock:
            top = self._seen.most_common(3)
            samples = self._samples
        return {
            "samples": samples,
            "held_at": [
                {**(describe(coroutine or inner) or {}), "blocking": describe(inner), "count": n}
                for (coroutine, inner), n in top
            ],
        }

    def _run(self) -> None:
        while True:
            self._armed.wait()
            frame = sys._current_frames().get(self.loop_thread or -1)
            found = user_frames(frame, 8, own_thread=False)
            del frame  # keep no frame of the app alive between samples
            coroutine = next((site for site in found if site[0].co_flags & inspect.CO_COROUTINE), None)
            with self._lock:
                if self._samples < MAX_SAMPLES:
                    self._samples += 1
                    if found:
                        self._seen[coroutine, found[0]] += 1
                else:
                    self._armed.clear()
            time.sleep(INTERVAL_S)
