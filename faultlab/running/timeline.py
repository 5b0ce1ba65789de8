"""A step's timeline: the cheap witnesses sampled every 25 ms, in a thread of the lab, while the step runs
(``<name>_max_during``, ``<name>_above_zero_s`` and the charts come from it)."""

from __future__ import annotations

import threading
import time

from faultlab.plugins.context import RunContext
from faultlab.plugins.observations import Sample
from faultlab.plugins.registry import Witness

__all__ = ["TIMELINE_INTERVAL_S", "Timeline", "longest_above_zero"]

TIMELINE_INTERVAL_S = 0.025
TIMELINE_MAX_SAMPLES = 2000


class Timeline:
    """Samples the cheap witnesses every few milliseconds in a thread of the lab while a step runs."""

    def __init__(self, witnesses: list[Witness], ctx: RunContext) -> None:
        self.witnesses = witnesses
        self.ctx = ctx
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lab-timeline", daemon=True)

    def _take(self) -> None:
        values: dict[str, float] = {}
        for witness in self.witnesses:
            try:
                values |= witness.sample(self.ctx)
            except Exception:  # a sample missed (a restart under way) is a gap, not a failure
                continue
        self.samples.append(Sample(t=round(time.monotonic() - self._started, 4), values=values))

    def _loop(self) -> None:
        while len(self.samples) < TIMELINE_MAX_SAMPLES - 1:
            self._take()
            if self._stop.wait(TIMELINE_INTERVAL_S):
                return

    def __enter__(self) -> Timeline:
        self._started = time.monotonic()
        if self.witnesses:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            # One more as the step ends: a step shorter than the interval still has its end in the series.
            self._take()


def longest_above_zero(samples: list[Sample], name: str) -> float:
    """The longest run of consecutive samples above 0, from its first sample to its last, in seconds."""
    longest, began = 0.0, None
    for sample in samples:
        if name not in sample.values:
            continue
        if sample.values[name] > 0:
            began = sample.t if began is None else began
            longest = max(longest, sample.t - began)
        else:
            began = None
    return round(longest, 3)
