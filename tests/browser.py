"""Headless Chromium, to prove a page renders: the DOM it built, and what it logged to its console."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Rendered", "render"]

NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass
class Rendered:
    dom: str
    console: list[str]  # the page's console messages, as Chromium logged them


def _chromium() -> str:
    for name in NAMES:
        if found := shutil.which(name):
            return found
    message = "no Chromium here (Debian: apt-get install chromium); .ci/run installs it"
    if os.environ.get("CI"):
        pytest.fail(message)  # in CI it must be there: a skipped render proves nothing
    pytest.skip(message)


def render(url: str, profile: Path, *, timeout_s: float = 60) -> Rendered:
    result = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    return Rendered(result.stdout, console)
