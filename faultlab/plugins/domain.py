"""The values an observation can take, and so whether an expectation on it can tell anything apart.

An expectation that every possible value passes (``ok = { min = 0 }``, ``error = { contains = "" }``)
checks nothing; one that no value passes (``{ min = 5, max = 1 }``, ``status = 700``) fails whatever
happens. Both are refused when the experiment file is loaded. The rule belongs to the domain, not to a
list of special cases: a domain answers "which of these bounds can hold, and which can fail?".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["FLAGS", "NON_NEGATIVE", "TEXTS", "WHOLE_NON_NEGATIVE", "Bounds", "Domain", "Flags", "Numbers", "Texts"]

_UNSET: Any = object()


@dataclass(frozen=True)
class Bounds:
    """What one expectation asks of a value: every bound given must hold (``faultlab.model.judge``)."""

    equals: Any = _UNSET
    min: float | None = None
    max: float | None = None
    contains: str | None = None
    not_contains: str | None = None

    @property
    def has_equals(self) -> bool:
        return self.equals is not _UNSET


class Domain(Protocol):
    def problem(self, bounds: Bounds) -> str | None:
        """Why no value of this domain can fail these bounds (or none can pass them); None if some can do each."""


@dataclass(frozen=True)
class Numbers:
    """Numbers from ``low`` to ``high``; whole ones only where ``whole``."""

    low: float = 0
    high: float = math.inf
    whole: bool = True
    nouns: str = "counts"

    def describe(self) -> str:
        top = "" if self.high == math.inf else f" to {self.high:g}"
        kind = "whole numbers" if self.whole else "numbers"
        return f"{self.nouns} are {kind} from {self.low:g}{top}" if top else f"{self.nouns} are {kind} ≥ {self.low:g}"

    def problem(self, bounds: Bounds) -> str | None:
        low = self.low if bounds.min is None else max(self.low, bounds.min)
        high = self.high if bounds.max is None else min(self.high, bounds.max)
        if self.whole:
            low, high = math.ceil(low), math.floor(high) if high != math.inf else high
        if bounds.has_equals:
            value = bounds.equals
            if not low <= value <= high:
                return f"no value can pass: {value} is outside {self._range(low, high)} ({self.describe()})"
            return None
        if low > high:
            empty = self._range(bounds.min, bounds.max)
            return f"no value can pass: the range {empty} is empty here ({self.describe()})"
        if low <= self.low and high >= self.high:
            return (
                f"every value passes, so it can never fail ({self.describe()}); "
                f"give a bound that some {self.nouns} miss"
            )
        return None

    @staticmethod
    def _range(low: float | None, high: float | None) -> str:
        left = "-∞" if low is None else f"{low:g}"
        right = "∞" if high is None or high == math.inf else f"{high:g}"
        return f"[{left}, {right}]"


@dataclass(frozen=True)
class Flags:
    """True or false: ``equals`` either way can fail."""

    def problem(self, bounds: Bounds) -> str | None:
        return None


@dataclass(frozen=True)
class Texts:
    """Any text, the empty one included."""

    def problem(self, bounds: Bounds) -> str | None:
        if bounds.contains == "":
            return 'contains "" holds for every text, so it can never fail; give the piece of text to look for'
        if bounds.not_contains == "":
            return 'not_contains "" fails for every text (each contains the empty text), so it can never pass'
        if bounds.contains is not None and bounds.not_contains is not None and bounds.not_contains in bounds.contains:
            return f"no value can pass: a text that contains {bounds.contains!r} also contains {bounds.not_contains!r}"
        if bounds.has_equals and isinstance(bounds.equals, str):
            if bounds.contains is not None and bounds.contains not in bounds.equals:
                return f"no value can pass: {bounds.equals!r} does not contain {bounds.contains!r}"
            if bounds.not_contains is not None and bounds.not_contains in bounds.equals:
                return f"no value can pass: {bounds.equals!r} contains {bounds.not_contains!r}"
        return None


WHOLE_NON_NEGATIVE = Numbers()
NON_NEGATIVE = Numbers(whole=False, nouns="measures (times, sizes)")
FLAGS = Flags()
TEXTS = Texts()
