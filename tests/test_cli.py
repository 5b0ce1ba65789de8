"""The command line: listing, selection, exit codes, machine-readable output."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem
from faultlab.model.catalogue import CATALOGUE_DIR, load_catalogue
from faultlab.plugins.registry import Registry
from tests.lab_cli import RUN_LAB, run_lab


def test_list_shows_every_experiment_with_its_backends(registry: Registry, tmp_path: Path) -> None:
    result = run_lab("--list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for entry in load_catalogue(registry):
        assert entry.experiment.name in result.stdout
    assert "sqlite" in result.stdout
    assert not (tmp_path / "lab-reports").exists(), "listing must not run anything"


def test_list_as_json_is_the_catalogue_for_a_program(registry: Registry, tmp_path: Path) -> None:
    result = run_lab("--list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {e["name"]: e for e in json.loads(result.stdout)["experiments"]}
    assert set(listed) == {entry.experiment.name for entry in load_catalogue(registry)}
    assert listed["stale-connection"]["backends"] == ["postgresql"] and listed["n-plus-one"]["fix_it_yourself"]


def test_a_command_line_other_than_the_doctors_loads_nothing_of_the_doctor(tmp_path: Path) -> None:
    """Its options are parsed with every command's; the doctor itself (its checks and report writers and what they
    import: 0.14 s of CPU at each start, measured on 2026-12-08) loads only when it runs."""
    code = (
        "import sys\nfrom faultlab.cli.command import main\nmain(['--list'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('faultlab.doctor.checkup', 'schemathesis'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "missing-yield" in out, out
    assert out.splitlines()[-1] == "[]", out.splitlines()[-1]


def test_no_argument_prints_the_catalogue_and_how_to_run_one(tmp_path: Path) -> None:
    result = run_lab(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "missing-yield" in result.stdout and "python run_lab.py missing-yield" in result.stdout


def test_unknown_name_suggests_the_closest_and_exits_2(tmp_path: Path) -> None:
    result = run_lab("missing-yeild", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown experiment 'missing-yeild'; did you mean 'missing-yield'" in result.stderr
    assert "--list" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "lab-reports").exists()


def test_a_fault_that_does_not_reproduce_fails_with_exit_1(tmp_path: Path) -> None:
    """The lab is honest: pointed at the correct app, the 'fault' run must not pass."""
    source = (CATALOGUE_DIR / "stale-schema.toml").read_text()
    assert 'variant = "stale_schema"' in source
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "no-fault.toml").write_text(
        source.replace('name = "stale-schema"', 'name = "no-fault"').replace(
            'variant = "stale_schema"', 'variant = "app"'
        )
    )
    junit = tmp_path / "ci" / "junit.xml"
    result = run_lab(
        "--experiments", mine, "--out", tmp_path / "reports", "--json", "--junit", junit, "no-fault", cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == 1
    assert summary["experiments"][0]["verdict"] == "fault not reproduced"
    journal = json.loads((tmp_path / "reports" / "no-fault" / "journal.json").read_text())
    assert journal["runs"]["fix"]["steps"] and journal["verdict"] == "fault not reproduced"

    import xml.etree.ElementTree as ET

    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    (case,) = suite.iter("testcase")
    failure = case.find("failure")
    assert case.get("name") == "no-fault" and failure is not None
    assert failure.get("message") == "fault not reproduced" and "fault run, step" in (failure.text or "")
    index = (tmp_path / "reports" / "index.html").read_text()
    assert 'href="no-fault/report.html"' in index and "[NOT OK]" in index


def test_json_summary_of_a_good_run(tmp_path: Path) -> None:
    result = run_lab("stale-schema", "--json", "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {
        "exit_code": 0,
        "experiments": [
            {
                "name": "stale-schema",
                "backend": "sqlite",
                "verdict": "as expected",
                "exit_code": 0,
                "report": str(tmp_path / "out" / "stale-schema"),
                "report_problem": None,
                "tells_fault_from_fix": True,
            }
        ],
    }
    assert "verdict" in result.stderr  # progress went to stderr, leaving stdout parseable


def test_db_must_be_a_known_backend(tmp_path: Path) -> None:
    result = run_lab("stale-schema", "--db", "mysql", cwd=tmp_path)
    assert result.returncode == 2
    assert "--db mysql: use sqlite, postgresql, or a URL" in result.stderr


def test_postgresql_without_a_server_is_a_clear_usage_error(tmp_path: Path) -> None:
    result = run_lab("missing-yield", "--db", "postgresql://postgres@127.0.0.1:1/postgres", cwd=tmp_path)
    assert result.returncode == 2
    assert "no PostgreSQL server answered at postgresql://postgres@127.0.0.1:1/postgres" in result.stderr
    assert "run without --db to use SQLite" in result.stderr
    assert not (tmp_path / "lab-reports").exists()


def test_an_experiment_named_for_another_backend_is_a_usage_error_not_a_silent_pass(tmp_path: Path) -> None:
    """Run by name, it must apply (exit 2, in JSON too); ``all`` skips what does not apply instead."""
    url = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    if problem := postgres_problem(url):
        pytest.skip(problem)
    result = run_lab("deleted-db", "--db", url, "--json", "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "deleted-db runs on sqlite only, not postgresql; run it with --db sqlite" in result.stderr
    assert json.loads(result.stdout) == {
        "exit_code": 2,
        "error": "deleted-db runs on sqlite only, not postgresql; run it with --db sqlite",
        "experiments": [],
    }
    assert not (tmp_path / "out").exists()


def test_a_python_without_the_dependencies_gets_the_setup_command(tmp_path: Path) -> None:
    """`python run_lab.py` outside the venv: one clear instruction, exit 2, no traceback."""
    # -S leaves site-packages out, as a Python without faultlab installed would be.
    result = subprocess.run(
        [sys.executable, "-S", str(RUN_LAB), "--list"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "lacks faultlab's dependencies" in result.stderr and "pip install -e ." in result.stderr
    assert "Traceback" not in result.stderr


def test_an_experiment_that_passes_either_way_proves_nothing(tmp_path: Path) -> None:
    """Its expectations hold on the fault and on the fix alike: a plain run says so (exit 1), as validate does."""
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("hollow", "hollow-too"):
        (mine / f"{name}.toml").write_text(
            f'name = "{name}"\ntitle = "Expects what any server does"\n[fault]\nvariant = "missing_yield"\n'
            '[fix]\nvariant = "app"\n[[steps]]\nkind = "request"\npath = "/todos/1"\n'
            "expect.fault = { status = 404 }\nexpect.fix = { status = 404 }\n"
            '[explain]\nwhy = "w"\nfix = "f"\nremember = "r"\n'
        )
    plain = run_lab("--experiments", mine, "hollow", "--json", "--out", tmp_path / "out", cwd=tmp_path)
    assert plain.returncode == 1, plain.stderr
    assert "verdict: proves nothing" in plain.stderr
    assert "the fault run's expectations on the fix run: all 1 hold" in plain.stderr
    assert "step 1 status = 404" in plain.stderr
    summary = json.loads(plain.stdout)["experiments"][0]
    assert (summary["verdict"], summary["exit_code"], summary["tells_fault_from_fix"]) == ("proves nothing", 1, False)
    report = (tmp_path / "out" / "hollow" / "report.md").read_text()
    assert "Verdict: ❌ proves nothing" in report and "Held on both: step 1 status = 404." in report
    assert "Held on both: step 1 status = 404." in (tmp_path / "out" / "hollow" / "report.html").read_text()
    junit = tmp_path / "junit.xml"
    both = run_lab(
        "--experiments", mine, "validate", "hollow", "hollow-too", "-j", "2", "--junit", junit,
        "--out", tmp_path / "out", cwd=tmp_path,
    )  # fmt: skip
    assert both.returncode == 1, both.stdout
    assert both.stdout.count("baseline: the fault run's expectations on the fix run: all 1 hold") == 2, both.stdout
    assert junit.read_text().count('message="proves nothing"') == 2


def test_validate_needs_names(tmp_path: Path) -> None:
    result = run_lab("validate", cwd=tmp_path)
    assert result.returncode == 2 and "validate which experiments?" in result.stderr


def test_every_subcommand_is_a_name_no_experiment_may_take() -> None:
    from faultlab.cli.command import COMMANDS, parser
    from faultlab.model.spec import RESERVED_NAMES

    subcommands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(subcommands) == COMMANDS
    assert COMMANDS | {"all"} <= RESERVED_NAMES


@pytest.mark.parametrize(
    ("argv", "parsed"),
    [
        ([], ["run"]),
        (["missing-yield"], ["run", "missing-yield"]),
        (["--out", "validate", "missing-yield"], ["run", "--out", "validate", "missing-yield"]),  # a dir named so
        (["--experiments", "d", "validate", "x"], ["validate", "--experiments", "d", "x"]),
        (["--json", "list"], ["list", "--json"]),
        (["doctor", "m:app"], ["doctor", "m:app"]),
        (["--", "fix"], ["run", "--", "fix"]),
        (["-h"], ["-h"]),
    ],
)
def test_the_command_word_goes_first_wherever_it_was(argv: list[str], parsed: list[str]) -> None:
    from faultlab.cli.command import _command_first, _takes_value, parser

    assert _command_first(argv, _takes_value(parser())) == parsed


def test_options_before_the_command_word_still_reach_it(registry: Registry, tmp_path: Path) -> None:
    listed = run_lab("--experiments", str(tmp_path), "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert {e["name"] for e in json.loads(listed.stdout)["experiments"]} == set(load_catalogue(registry).names())
