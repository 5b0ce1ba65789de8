"""Screenshots of the HTML reports, for people to look at (the suite proves they render; this shows them).

    python docs/screenshots.py [NAME ...] [--out DIR]

Runs each experiment (default: missing-yield) into a temp report dir, then has headless Chromium take a
full-page PNG of its report and of the run's index page, into DIR (default: ./screenshots).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    raise SystemExit("no Chromium found (Debian: apt-get install chromium)")


def shoot(browser: str, page: Path, png: Path, profile: Path, height: int) -> None:
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size=1200,{height}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    print(png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["missing-yield"])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args()
    browser = chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="faultlab-shots-") as tmp:
        reports = Path(tmp) / "reports"
        run = subprocess.run([sys.executable, str(ROOT / "run_lab.py"), *args.names, "--out", str(reports)])
        if run.returncode not in (0, 1):
            raise SystemExit(f"run_lab.py exited {run.returncode}")
        for name in args.names:
            shoot(browser, reports / name / "report.html", args.out / f"{name}.png", Path(tmp) / "profile", 5200)
        shoot(browser, reports / "index.html", args.out / "index.png", Path(tmp) / "profile", 700)


if __name__ == "__main__":
    main()
