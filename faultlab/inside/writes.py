"""Writes a session sent and never committed: the line a "created, then not found" finding points to.

A create that answers 2xx with an id and leaves nothing behind flushed its INSERT inside a transaction that
nobody committed: the session's end (``close()``, or a rollback) threw it away. SQLAlchemy says both moments
on the ``Session`` class (so every session of the app, an ``AsyncSession``'s too, is heard): ``after_flush``
(the app's line that sent the write, and which classes it wrote) and ``after_transaction_end`` of the
session's outermost transaction without an ``after_commit`` before it (the app's line that ended it, when
one was on the stack). Each is noted with the request it happened in (method and route), kept by a context
variable the thread pool's and SQLAlchemy's greenlets inherit. Nothing of the session is kept beyond its
life (a weak reference), and the listeners never raise. Only the doctor turns it on (``FAULTLAB_SITES``).
"""

from __future__ import annotations

import contextvars
import sys
import threading
import weakref
from collections import Counter
from collections.abc import MutableMapping
from typing import Any

from faultlab.inside.sites import Site, describe, user_frames

__all__ = ["UncommittedWrites"]

MAX_KINDS = 200  # distinct (request, lines, classes) kept: a long run's notes stay bounded

_Scope = MutableMapping[str, Any]
_REQUEST: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("faultlab_request", default=None)

_Key = tuple[str, Site | None, Site | None, tuple[str, ...]]


def _label(scope: _Scope) -> str:
    """``POST /todos``: the route's path when routing has chosen one (it is in the scope by now), else the path."""
    route = scope.get("route")
    return f"{scope.get('method')} {getattr(route, 'path', None) or scope.get('path')}"


class UncommittedWrites:
    def __init__(self) -> None:
        self.counts: Counter[_Key] = Counter()
        # By session: the request, the app's line of its latest flush, and the classes flushed, until it commits.
        self._flushed: weakref.WeakKeyDictionary[Any, tuple[str, Site | None, set[str]]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        event.listen(Session, "after_flush", self._after_flush)
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_transaction_end", self._after_transaction_end)

    def begin(self, scope: _Scope) -> contextvars.Token[_Scope | None]:
        return _REQUEST.set(scope)

    def end(self, token: contextvars.Token[_Scope | None]) -> None:
        _REQUEST.reset(token)

    def _after_flush(self, session: Any, flush_context: Any) -> None:
        try:
            scope = _REQUEST.get()
            if scope is None:
                return  # start-up's writes, or another thread's: no request to tie them to
            written = {type(obj).__name__ for obj in (*session.new, *session.dirty, *session.deleted)}
            if not written:
                return
            here = user_frames(sys._getframe(1), 1)
            with self._lock:
                _, _, before = self._flushed.get(session, ("", None, set()))
                self._flushed[session] = (_label(scope), here[0] if here else None, before | written)
        except Exception:  # a note that cannot be taken is lost; the app's flush must not be
            return

    def _after_commit(self, session: Any) -> None:
        with self._lock:
            self._flushed.pop(session, None)

    def _after_transaction_end(self, session: Any, transaction: Any) -> None:
        """The outermost transaction ended with flushed writes and no commit: they are gone."""
        if getattr(transaction, "parent", None) is not None:
            return
        try:
            with self._lock:
                flushed = self._flushed.pop(session, None)
            if flushed is None:
                return
            label, flushed_at, classes = flushed
            here = user_frames(sys._getframe(1), 1)
            key = (label, flushed_at, here[0] if here else None, tuple(sorted(classes)))
            with self._lock:
                if key in self.counts or len(self.counts) < MAX_KINDS:
                    self.counts[key] += 1
        except Exception:
            return

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            counted = list(self.counts.items())
        return [
            {"request": label, "flushed_at": describe(flushed), "ended_at": describe(ended), "classes": list(classes),
             "count": count}
            for (label, flushed, ended, classes), count in counted
        ]  # fmt: skip
