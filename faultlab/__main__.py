"""``faultlab`` and ``python -m faultlab`` (and, in a checkout, ``python run_lab.py``): the command line, with
its signals set before the imports so that Ctrl+C, SIGTERM or a closed terminal always end in one line."""

import errno
import signal
import sys
from types import FrameType

SETUP = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python run_lab.py"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _exit(code: int) -> None:
    """Everything is cleaned up by now: a late Ctrl+C must not turn the exit code into a death by signal
    (Python restores the default handlers while it shuts down)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)


def run() -> None:
    try:
        # Before the imports (half a second): a SIGTERM or a closed terminal then ends as Ctrl+C does, in one
        # line. Inside the try: a Ctrl+C that comes once these are set is caught here (tests/test_lifetime.py
        # waits for them to be set, as seen in /proc, before it signals).
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)
        try:
            from faultlab.cli import main
        except ModuleNotFoundError as missing:
            if (missing.name or "").startswith("faultlab"):
                raise  # faultlab itself is broken (a packaging bug), not this Python's dependencies
            print(
                f"error: this Python ({sys.executable}) lacks faultlab's dependencies (no module {missing.name!r}).\n"
                f"Set up once and run with the project's venv: {SETUP}",
                file=sys.stderr,
            )
            sys.exit(2)
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except OSError as exc:
        if exc.errno not in (errno.EIO, errno.EPIPE):
            raise
        code = 130  # the terminal went away (SIGHUP): everything was cleaned up already
    _exit(code)


if __name__ == "__main__":
    run()
