"""``/docs`` works without internet: headless Chromium, with every address but loopback unreachable, renders
the Swagger UI page with the API's six operations (the assets come from the fastapi-offline package)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.servers import running_app

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
OPERATIONS = {
    ("GET", "/todos"),
    ("POST", "/todos"),
    ("GET", "/todos/count"),
    ("GET", "/todos/{todo_id}"),
    ("PATCH", "/todos/{todo_id}"),
    ("DELETE", "/todos/{todo_id}"),
}
OPERATION = re.compile(r'opblock-summary-method">([A-Z]+)</span>.*?data-path="([^"]+)"')


def _browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:  # bash .ci/run installs it wherever it can (root with apt-get)
        pytest.skip("no Chromium to render /docs in: apt-get install chromium (bash .ci/run does it as root)")
    return found


def _rendered_dom(browser: str, url: str, profile: Path) -> str:
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--proxy-server=http://127.0.0.1:9",  # offline: anything not on loopback fails to load
        "--virtual-time-budget=15000",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return out.decode()


def test_docs_show_the_six_operations_offline(tmp_path: Path) -> None:
    browser = _browser()
    with running_app(tmp_path, f"sqlite:///{tmp_path / 'todos.db'}") as (base, _):
        dom = _rendered_dom(browser, f"{base}/docs", tmp_path / "profile")
    assert set(OPERATION.findall(dom)) == OPERATIONS, dom[-2000:]
