"""Where in the app's own code something happened: the first frames of the stack that belong to no library.

Findings say *where* (``heroes.py:43 in get_session``), so the harness notes, cheaply, the frames of the
app's code at the moments that matter: a connection checked out of the pool (``CheckoutSites``), a
relationship loaded lazily and the query that loaded its parents (``LazyLoads``), an exception's traceback
(``traceback_site``). The stack is walked with ``sys._getframe`` and each code object is judged once (a
dictionary lookup after that); nothing of the app is kept but code objects and line numbers, so no session,
connection or frame lives longer for being observed. ``benchmarks/bench_sites.py`` measures the cost.

What is "the app's code": any file outside the standard library, the installed packages (``site-packages``,
``dist-packages``) and faultlab's own package.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
import time
from collections import Counter
from types import CodeType, FrameType, TracebackType
from typing import Any

from faultlab.inside.providers import session_provider

__all__ = ["CheckoutSites", "LazyLoads", "Site", "traceback_site", "user_frames"]

Site = tuple[CodeType, int]  # a code object and the line it was at


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # faultlab itself
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots)


_ROOTS = _library_roots()
_MARKS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_mine: dict[CodeType, bool] = {}


def _is_users(code: CodeType) -> bool:
    name = code.co_filename
    if name.startswith("<"):
        return False
    real = os.path.realpath(name)
    return not (real.startswith(_ROOTS) or any(mark in real for mark in _MARKS))


def user_frames(frame: FrameType | None, limit: int = 2, *, own_thread: bool = True) -> list[Site]:
    """The innermost ``limit`` frames of the app's code from ``frame`` outwards, across greenlets: SQLAlchemy's
    async layer does its IO in a greenlet whose first frame has no ``f_back``, so the app's ``async def`` that
    awaited it is found through the parent greenlet's frame. Only for a frame of this thread (``own_thread``):
    another thread's greenlets cannot be reached from here, so a stack sampled from outside stops at its end."""
    found: list[Site] = []
    current = _greenlet() if own_thread else None
    while frame is not None and len(found) < limit:
        code = frame.f_code
        mine = _mine.get(code)
        if mine is None:
            mine = _mine[code] = _is_users(code)
        if mine:
            found.append((code, frame.f_lineno))
        frame = frame.f_back
        if frame is None and current is not None and current.parent is not None:
            current = current.parent
            frame = current.gr_frame
    return found


def _greenlet() -> Any:
    """The running greenlet, when greenlet is loaded (only an app on SQLAlchemy's async layer runs in one)."""
    module = sys.modules.get("greenlet")
    return module.getcurrent() if module is not None else None


def describe(site: Site | None) -> dict[str, Any] | None:
    if site is None:
        return None
    code, line = site
    return {"file": code.co_filename, "line": line, "function": code.co_name}


def traceback_site(exc: BaseException) -> Site | None:
    """The innermost frame of the app's code in the exception's traceback: the app's line nearest the raise."""
    found: Site | None = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if _mine.setdefault(code, _is_users(code)):
            found = (code, tb.tb_lineno)
        tb = tb.tb_next
    return found


class CheckoutSites:
    """For each connection record checked out, where the app's code was when it was taken (by ``id(record)``)."""

    def __init__(self) -> None:
        self.open: dict[int, tuple[list[Site], float]] = {}

    def checkout(self, record_id: int) -> None:
        self.open[record_id] = (user_frames(sys._getframe(1)), time.monotonic())

    def checkin(self, record_id: int) -> None:
        self.open.pop(record_id, None)

    def snapshot(self, target: object) -> list[dict[str, Any]]:
        """Every connection still checked out: where it was taken, how long ago, and the dependency that gave
        the route its session when that dependency returns it (nothing closes what a plain function returns)."""
        now = time.monotonic()
        return [
            {
                "checked_out_at": [describe(site) for site in sites],
                "seconds": round(now - since, 3),
                "session_from": describe(session_provider(target, {code for code, _ in sites})),
            }
            for sites, since in list(self.open.values())
        ]


class LazyLoads:
    """Each relationship loaded lazily: the attribute, the app's line that read it (none when the response's
    serialization did), and the app's line of the latest query that loaded rows of its class."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, Site | None, Site | None]] = Counter()
        self._queried: dict[type, Site] = {}
        self._lock = threading.Lock()

    def executed(self, state: Any) -> None:
        """``do_orm_execute``: notes, never returns a result, never raises (the statement runs as it would)."""
        if not state.is_select:  # an insert, update or delete has no load options to read (they would raise)
            return
        try:
            self._note(state)
        except Exception:  # a note that cannot be taken is lost; the app's statement must not be
            return

    def _note(self, state: Any) -> None:
        loaded_from = state.lazy_loaded_from
        if loaded_from is None:
            if sites := user_frames(sys._getframe(2), 1):
                for mapper in state.all_mappers:
                    self._queried[mapper.class_] = sites[0]
            return
        path = state.loader_strategy_path
        prop = path[-1] if path is not None and len(path) else None
        owner = loaded_from.class_
        attribute = f"{owner.__name__}.{getattr(prop, 'key', '?')}"
        sites = user_frames(sys._getframe(2), 1)
        with self._lock:
            self.counts[(attribute, sites[0] if sites else None, self._queried.get(owner))] += 1

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            counted = list(self.counts.items())
        return [
            {"attribute": attribute, "read_at": describe(read), "query_at": describe(query), "count": count}
            for (attribute, read, query), count in counted
        ]
