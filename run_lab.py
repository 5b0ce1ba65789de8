#!/usr/bin/env python3
"""faultlab: run a fault-injection experiment on a real server. ``python run_lab.py --help``."""

import sys

from lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
