#!/usr/bin/env python3
"""faultlab in a checkout: ``python run_lab.py --help`` (installed, the same is ``faultlab --help``)."""

if __name__ == "__main__":
    from faultlab.__main__ import run

    run()
