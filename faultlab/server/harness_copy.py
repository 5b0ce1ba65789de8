"""The in-server harness alone, as a package in a directory of its own, for a server of someone else's code.

A user's project may have a package named ``app`` (or ``faults``), as this checkout does: putting the checkout on
the project's import path would let ours shadow theirs. So a server of a user's app is given a directory that
holds only ``faultlab/__init__.py`` and ``faultlab/inside/`` (which imports nothing else of faultlab), and that
directory goes on its import path after the project's own. It works with the project's own interpreter too:
the harness needs only what a FastAPI + SQLAlchemy app has installed anyway (starlette, SQLAlchemy, uvicorn).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from faultlab import inside

__all__ = ["harness_only"]

_INSIDE = Path(inside.__file__).resolve().parent


def harness_only(directory: Path) -> Path:
    """``directory`` holding ``faultlab/inside`` and an empty ``faultlab/__init__.py``; returns it."""
    package = directory / "faultlab"
    (package / "inside").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""The harness of faultlab alone (faultlab.server.harness_copy)."""\n')
    for source in _INSIDE.glob("*.py"):
        shutil.copyfile(source, package / "inside" / source.name)
    return directory
