"""Where the app created its engine: the line a stale-connection finding points to (``pool_pre_ping`` is an
argument of that call). SQLAlchemy keeps no record of it, so, before the app is imported, the harness wraps
the one hook every ``create_engine`` calls on its way out (``Dialect.engine_created``, a no-op classmethod that
SQLAlchemy provides for this, overridden by none of its dialects) and notes the app's frames on the stack.
``create_async_engine`` and SQLModel's ``create_engine`` go through the same call. The wrapper calls the hook it
wraps and returns nothing else, so the engine is the one the app would get; only the doctor installs it
(``FAULTLAB_SITES``).
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from faultlab.inside.sites import Site, user_frames

__all__ = ["EngineSites"]


class EngineSites:
    """The app's frames (innermost first) at each engine's creation, by engine, for as long as it lives."""

    def __init__(self) -> None:
        self._created: weakref.WeakKeyDictionary[Any, list[Site]] = weakref.WeakKeyDictionary()
        self.installed = False

    def install(self) -> None:
        """Wrap ``Dialect.engine_created``: from now on every engine's creation is noted."""
        from sqlalchemy.engine.interfaces import Dialect

        hook = Dialect.__dict__.get("engine_created")
        if not isinstance(hook, classmethod) or self.installed:
            return  # another SQLAlchemy than the one read: nothing noted, the finding says it cannot tell
        original = hook.__func__
        created = self._created

        def engine_created(cls: type, engine: Any) -> None:
            try:
                if engine not in created:  # called twice when a plugin's entry point is not the dialect class
                    created[engine] = user_frames(sys._getframe(1), 2)
            except Exception:  # a note that cannot be taken is lost; the app's engine must not be
                pass
            original(cls, engine)

        Dialect.engine_created = classmethod(engine_created)  # type: ignore[method-assign,assignment]
        self.installed = True

    def created_at(self, engine: Any) -> list[Site] | None:
        """The app's frames where ``engine`` was created (empty: only libraries' frames were on the stack);
        None when its creation was not seen."""
        try:
            return self._created.get(engine)
        except TypeError:  # not weakly referable: not an engine this saw
            return None
