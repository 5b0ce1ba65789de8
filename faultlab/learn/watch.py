"""``check --watch``: check again every time the learner saves the file, until it passes or Ctrl+C."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import watchfiles

__all__ = ["watch"]

DEBOUNCE_MS = 200


def watch(path: Path, check_once: Callable[[], bool], saved: Callable[[], None]) -> None:
    """``check_once`` now and after each save of ``path`` (editors that save by renaming included), until it
    returns True. Ctrl+C raises KeyboardInterrupt, as everywhere in the lab."""
    if check_once():
        return
    # The directory, not the file: an editor that writes a new file and renames it over the old one would
    # end a watch on the file itself.
    for _ in watchfiles.watch(
        path.parent,
        watch_filter=lambda change, changed: Path(changed).name == path.name,
        debounce=DEBOUNCE_MS,
        recursive=False,
    ):
        if not path.exists():
            continue
        saved()
        if check_once():
            return
