"""Hostile or odd experiment files, through the real command line: one clear message per file, exit 2, no
traceback, no hang, no memory blow-up, and nothing run."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from faultlab.model.catalogue import CATALOGUE_DIR
from tests.lab_cli import run_lab

GOOD = (CATALOGUE_DIR / "stale-schema.toml").read_text(encoding="utf-8")


def _mine(text: str, name: str = "mine") -> str:
    return text.replace('name = "stale-schema"', f'name = "{name}"')


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.toml")


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "a directory": (lambda p: p.mkdir(), "a directory, not an experiment file"),
    "a dangling symlink": (_dangling, "a symbolic link to nothing"),
    "a named pipe": (lambda p: os.mkfifo(p), "a named pipe, not an experiment file"),
    "a symlink to /dev/zero": (lambda p: p.symlink_to("/dev/zero"), "a device, not an experiment file"),
    "too large": (lambda p: p.write_text("# " + "x" * 300_000), "larger than 256 KiB"),
    "nested 1,000 deep": (lambda p: p.write_text("x = " + "[" * 1000 + "]" * 1000), "nested too deeply"),
    "repeat = true": (
        lambda p: p.write_text(_mine(GOOD).replace('path = "/todos/count"', 'path = "/todos/count"\nrepeat = true')),
        "steps[4].repeat: Input should be a valid integer",
    ),
    "a percent-encoded harness path": (
        lambda p: p.write_text(_mine(GOOD).replace('path = "/todos/count"', 'path = "/%5Flab/gc/disable"')),
        "/_lab/ is the lab's own",
    ),
    "saved as UTF-16": (lambda p: p.write_text(_mine(GOOD), encoding="utf-16"), "it is UTF-16: save it as UTF-8"),
    "a dot-dot path": (
        lambda p: p.write_text(_mine(GOOD).replace('path = "/todos/count"', 'path = "/todos/../_lab/errors"')),
        "may not contain '.' or '..' segments",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_odd_file_is_one_clear_problem_and_exit_2(case: str, tmp_path: Path) -> None:
    make, message = CASES[case]
    mine = tmp_path / "mine"
    mine.mkdir()
    make(mine / "mine.toml")
    result = run_lab("--experiments", mine, "--list", cwd=tmp_path, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{mine / 'mine.toml'}: not a valid experiment file" in result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "mine.toml").write_bytes(b"\xef\xbb\xbf" + _mine(GOOD).encode())
    result = run_lab("--experiments", mine, "--list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "mine" in result.stdout


def test_every_bad_file_is_reported_and_other_formats_are_not_ignored(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "one.toml").write_text("name = ")
    (mine / "two.toml").write_text(_mine(GOOD, "two").replace('variant = "app"', 'variant = "nope"'))
    (mine / "three.yaml").write_text("name: three")
    (mine / "README.md").write_text("notes are fine")
    (mine / ".#one.toml").write_text("an editor's lock file")
    result = run_lab("--experiments", mine, "--list", cwd=tmp_path)
    assert result.returncode == 2
    for name, problem in (
        ("one.toml", "TOML syntax"),
        ("two.toml", "fix.variant: unknown variant 'nope'"),
        ("three.yaml", "experiments are TOML files (.toml): convert it"),
    ):
        assert f"{mine / name}: not a valid experiment file" in result.stderr and problem in result.stderr, name
    assert "README.md" not in result.stderr and ".#one.toml" not in result.stderr


def test_a_huge_name_is_not_echoed_whole(tmp_path: Path) -> None:
    result = run_lab("x" * 100_000, cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown experiment 'xxxx" in result.stderr and len(result.stderr) < 500, len(result.stderr)
