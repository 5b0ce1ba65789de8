"""The exit codes of every command of the lab, defined once (README: the verdict tables)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0  # as expected; nothing found; fixed
    NOT_OK = 1  # another verdict; findings; not fixed yet
    USAGE = 2  # nothing was started: a usage error, said in one line
    INCOMPLETE = 3  # the doctor: a check it lists could not run, and it found nothing
    INTERRUPTED = 130  # Ctrl+C, SIGTERM or a lost terminal (128 + SIGINT)
