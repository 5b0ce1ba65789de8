"""Whom the lab's own database servers run as. PostgreSQL and PgBouncer both refuse to run as root, so a lab
running as root runs them as the ``postgres`` user, and opens the run's temp dir to that user's group for
traversal only (no listing, no reading). A lab running as anyone else runs them as itself."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

from faultlab.errors import BackendError

__all__ = ["SERVER_USER", "as_user", "open_run_dir", "root_problem", "server_user"]

SERVER_USER = "postgres"  # whom a root lab runs its servers as


def server_user() -> pwd.struct_passwd | None:
    """The user to run a server as; None: the lab's own (it is not root)."""
    return pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else None


def root_problem(what: str) -> str | None:
    """Why a lab running as root cannot run ``what`` (no user to run it as); None when it can."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return (
            f"the lab runs as root, which {what} refuses, and there is no {SERVER_USER!r} user to run it as; "
            f"run the lab as a normal user, or create that user"
        )
    return None


def open_run_dir(run_dir: Path, user: pwd.struct_passwd) -> None:
    """Root's private run dir, opened to the server user's group for traversal only; its parents must already
    be traversable (a private TMPDIR is not: the error says what to do)."""
    for parent in run_dir.resolve().parents:
        if not _traversable(parent, user):
            raise BackendError(
                f"the {SERVER_USER} user, which runs the lab's database servers when the lab runs as root, cannot "
                f"reach {parent}; point TMPDIR at a directory under one it can traverse (e.g. /tmp)"
            )
    os.chown(run_dir, 0, user.pw_gid)
    run_dir.chmod(0o710)


def _traversable(path: Path, user: pwd.struct_passwd) -> bool:
    """By anyone, or by the user's group (a run dir opened before, for a server in a dir below it)."""
    mode = path.stat()
    return bool(mode.st_mode & 0o001 or (mode.st_gid == user.pw_gid and mode.st_mode & 0o010))


def as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """``subprocess`` keywords that run a child as ``user`` (nothing when None)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
