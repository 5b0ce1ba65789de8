"""Bad options and hostile text: one clear line and exit 2 before anything runs, no password printed, no
markup from a file in a report; and a report that cannot be published is kept, not lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faultlab.model.catalogue import CATALOGUE_DIR
from tests.lab_cli import RUN_LAB, run_lab, start_lab
from tests.test_lifetime import _await_servers

SECRET = "s3cr3t-PASSWORD"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@127.0.0.1:notaport/p", "--db postgresql://u@127.0.0.1:notaport/p: not a database URL"),
        (f"mysql://root:{SECRET}@127.0.0.1/test", "--db mysql://root:***@127.0.0.1/test: the lab runs on SQLite or"),
        (f"postgresql+asyncpg://u:{SECRET}@127.0.0.1/d", "the lab connects with psycopg 3; write postgresql://"),
        (f"postgresql://u:{SECRET}@127.0.0.1:1/p", "no PostgreSQL server answered at postgresql://u:***@127.0.0.1:1/p"),
        ("oracle", "--db oracle: use sqlite, postgresql, or a URL such as"),
        (f"postgres+psycopg2://u:{SECRET}@127.0.0.1/d", "(no +psycopg2)"),
    ],
)
def test_a_bad_db_option_is_one_line_exit_2_and_never_shows_the_password(
    url: str, message: str, tmp_path: Path
) -> None:
    result = run_lab("missing-yield", "--db", url, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2, result.stderr


def test_json_on_a_usage_error_is_still_json(tmp_path: Path) -> None:
    result = run_lab("no-such-experiment", "--json", cwd=tmp_path)
    assert result.returncode == 2
    answer = json.loads(result.stdout)
    assert answer["exit_code"] == 2 and "unknown experiment 'no-such-experiment'" in answer["error"]


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_a_report_place_that_is_not_a_report_dir_is_refused_before_the_run(kind: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    place = out / "stale-schema"
    if kind == "file":
        place.write_text("not a report")
    else:
        place.symlink_to(mine, target_is_directory=True)
    result = run_lab("stale-schema", "--out", out, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{place} is a {'file' if kind == 'file' else 'symbolic link'}; a report would replace it" in result.stderr
    assert (mine / "keep.txt").read_text() == "mine" and sorted(p.name for p in mine.iterdir()) == ["keep.txt"]
    assert place.is_symlink() if kind == "symlink" else place.read_text() == "not a report"


def test_a_report_that_cannot_be_published_after_the_run_is_kept_and_its_place_said(tmp_path: Path) -> None:
    """--out disappears mid-run and a file takes its place: the evidence goes to a temp dir, and the lab says so."""
    out = tmp_path / "out"
    lab = start_lab("stale-schema", "--json", "--out", out, cwd=tmp_path, stderr=subprocess.PIPE)
    _await_servers(lab.pid)  # the run is under way; --out was checked and made before it
    shutil.rmtree(out)
    out.write_text("a file where the reports were")
    stdout, stderr = lab.communicate(timeout=120)
    assert lab.returncode == 0, stderr
    (item,) = json.loads(stdout)["experiments"]
    kept = Path(item["report"])
    try:
        assert item["report_problem"].startswith(f"could not write the report to {out}"), item
        assert (kept / "report.md").is_file() and (kept / "journal.json").is_file()
        assert out.read_text() == "a file where the reports were"
    finally:
        shutil.rmtree(kept.parent, ignore_errors=True)


def test_the_users_uvicorn_settings_do_not_reach_the_lab_servers(tmp_path: Path) -> None:
    """uvicorn reads UVICORN_* from the environment: a quiet log level would hide the line the port is read from."""
    result = run_lab(
        "stale-schema", "--out", tmp_path / "o", cwd=tmp_path, env={"UVICORN_LOG_LEVEL": "error", "UVICORN_PORT": "1"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: as expected" in result.stdout


def test_no_usable_temp_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tempfile; tempfile.tempdir = sys.argv[1]; sys.argv = sys.argv[1:];"
            f"exec(open({str(RUN_LAB)!r}).read())",
            str(tmp_path / "gone"),
            "stale-schema",
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "no usable temp dir" in result.stderr and "set TMPDIR to a writable directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_text_from_an_experiment_file_cannot_put_markup_in_a_report(tmp_path: Path) -> None:
    source = (CATALOGUE_DIR / "stale-schema.toml").read_text()
    hostile = (
        source.replace('name = "stale-schema"', 'name = "hostile"')
        .replace('title = "The model has a column', 'title = "<img src=x onerror=alert(1)> a column')
        .replace('path = "/todos/count"', 'path = "/todos/count?a=`|`<script>x</script>"')
        .replace('why = """', 'why = """<script>alert(1)</script> and `<kept in code>` ')
    )
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "hostile.toml").write_text(hostile)
    result = run_lab("--experiments", mine, "hostile", "--out", tmp_path / "out", cwd=tmp_path)
    report = (tmp_path / "out" / "hostile" / "report.md").read_text()
    span = "``GET /todos/count?a=`\\|`<script>x</script>``"
    assert span in report, "the path stays one code span (shown literally) in one table cell"
    outside_code = report.replace(span, "").replace("`<kept in code>`", "")
    assert "<img" not in outside_code and "<script" not in outside_code, "raw HTML from the file reached the report"
    assert "&lt;img src=x onerror=alert(1)&gt;" in report and "&lt;script&gt;alert(1)" in report
    assert "`<kept in code>`" in report, "code spans are shown as written"
    assert result.returncode in (0, 1), result.stderr  # the lesson itself does not matter here
    assert os.path.isdir(tmp_path / "out" / "hostile")
    page = (tmp_path / "out" / "hostile" / "report.html").read_text()
    assert "<img" not in page and "<script" not in page, "raw HTML from the file reached the HTML report"
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
