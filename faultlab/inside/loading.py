"""What the ORM was loading, in the request that raised: the line an implicit-IO finding points to.

An ``AsyncSession`` refuses IO outside an ``await`` (``MissingGreenlet``) after its ``do_orm_execute`` has run,
so the load it refused is known before the exception is: a relationship loaded lazily (the fix is a loader
option on the query that loaded its parents) or the columns of an object that a commit expired (the fix is
``expire_on_commit=False`` on that session, or a refresh inside an ``await``). Each request gets its own notes
(a context variable, which the thread pool's and SQLAlchemy's greenlets inherit): the queries it ran by class,
the last expiring commit of each session, and its last load of either kind, which the harness writes beside
the exception (``ExceptionRecord.loading``). Only the doctor turns it on (``FAULTLAB_SITES``).
"""

from __future__ import annotations

import contextvars
import sys
from typing import Any

from faultlab.inside.sites import Site, describe, user_frames

__all__ = ["RequestLoads"]


class _Notes:
    def __init__(self) -> None:
        self.queried: dict[type, Site] = {}  # the app's line of the latest query that loaded rows of a class
        self.commits: dict[int, Site] = {}  # by session: the app's line of its latest commit that expired objects
        self.last: dict[str, Any] | None = None  # the latest lazy load or reload of expired columns


_NOTES: contextvars.ContextVar[_Notes | None] = contextvars.ContextVar("faultlab_request_loads", default=None)


class RequestLoads:
    """The listeners (on the ``Session`` class, so every session of the app is heard) and the request's notes."""

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        event.listen(Session, "do_orm_execute", self.executed)
        event.listen(Session, "after_commit", self.committed)
        event.listen(Session, "after_rollback", self.rolled_back)

    def begin(self) -> contextvars.Token[_Notes | None]:
        return _NOTES.set(_Notes())

    def end(self, token: contextvars.Token[_Notes | None]) -> None:
        _NOTES.reset(token)

    def last(self) -> dict[str, Any] | None:
        """The request's latest load: what was being loaded when an exception escaped it."""
        notes = _NOTES.get()
        return notes.last if notes is not None else None

    def committed(self, session: Any) -> None:
        notes = _NOTES.get()
        if notes is None or not getattr(session, "expire_on_commit", False):
            return
        if sites := user_frames(sys._getframe(1), 1):
            notes.commits[id(session)] = sites[0]

    def rolled_back(self, session: Any) -> None:
        """A rollback expires the session's objects too: its earlier commit no longer says why they reload."""
        notes = _NOTES.get()
        if notes is not None:
            notes.commits.pop(id(session), None)

    def executed(self, state: Any) -> None:
        """``do_orm_execute``: notes, never returns a result, never raises (the statement runs as it would)."""
        notes = _NOTES.get()
        if notes is None or not state.is_select:
            return
        try:
            self._note(notes, state)
        except Exception:  # a note that cannot be taken is lost; the app's statement must not be
            return

    def _note(self, notes: _Notes, state: Any) -> None:
        here = user_frames(sys._getframe(1), 1)
        read_at = describe(here[0]) if here else None
        loaded_from = state.lazy_loaded_from
        if loaded_from is not None:
            path = state.loader_strategy_path
            prop = path[-1] if path is not None and len(path) else None
            owner = loaded_from.class_
            notes.last = {
                "kind": "lazy load",
                "attribute": f"{owner.__name__}.{getattr(prop, 'key', '?')}",
                "read_at": read_at,
                "query_at": describe(notes.queried.get(owner)),
            }
        elif state.is_column_load:
            refreshed = getattr(state.load_options, "_refresh_state", None)  # the object whose columns reload
            owner = getattr(refreshed, "class_", None)
            expired = bool(getattr(refreshed, "expired", False))  # every column expired, as a commit leaves it
            commit = notes.commits.get(id(state.session)) if expired else None
            notes.last = {
                "kind": "expired columns" if expired else "column load",
                "class": getattr(owner, "__name__", "?"),
                "read_at": read_at,
                "commit_at": describe(commit),
            }
        elif here:
            for mapper in state.all_mappers:
                notes.queried[mapper.class_] = here[0]
