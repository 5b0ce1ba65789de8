#!/usr/bin/env python3
"""faultlab: run a fault-injection experiment on a real server. ``python run_lab.py --help``."""

import sys

SETUP = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python run_lab.py"

if __name__ == "__main__":
    try:
        from lab.cli import main
    except ModuleNotFoundError as missing:
        print(
            f"error: this Python ({sys.executable}) lacks faultlab's dependencies (no module {missing.name!r}).\n"
            f"Set up once and run with the project's venv: {SETUP}",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(main())
