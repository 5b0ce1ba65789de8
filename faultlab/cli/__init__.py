"""``python run_lab.py``: the command line (``command``), its options, what it shows while experiments run
(``progress``) and once they end (``verdicts``), and how it runs several (``runs``)."""

from faultlab.cli.command import main

__all__ = ["main"]
