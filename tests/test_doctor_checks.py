"""The doctor's checks keep their contract (``faultlab.doctor.contract``): the built-in ones are refused at start
if they do not, and a check of the other database is listed as not applicable, once per name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.lab_cli import run_lab

DOCTOR_APPS = Path(__file__).parent / "fixtures" / "doctor_apps"


def test_every_built_in_check_keeps_the_contract() -> None:
    from faultlab.doctor.checks import BUILTIN_CHECKS, checks

    made = checks()
    assert [type(check) for check in made] == list(BUILTIN_CHECKS), made


def test_a_check_without_a_hook_is_refused_with_its_name() -> None:
    from faultlab.doctor.checks import checks
    from faultlab.doctor.contract import Check
    from faultlab.errors import PluginError

    class Idle(Check):
        name = "does nothing"

    with pytest.raises(PluginError, match=r"doctor check .*Idle: implements none of start, operation"):
        checks((Idle,))


def test_the_other_databases_checks_are_applying_once_each() -> None:
    from faultlab.doctor.checks import checks
    from faultlab.doctor.checkup import _applying
    from faultlab.doctor.report import Report

    report = Report("x:app", "sqlite")
    applying = _applying(checks(), "sqlite", report)
    assert [(e.check, e.reason, e.remedy) for e in report.not_applicable] == [
        ("statement timeout", "PostgreSQL only", "run with --db postgresql to include it"),
        ("idle in transaction", "PostgreSQL only", "run with --db postgresql to include it"),
    ], report.not_applicable  # the database restart's says itself why (it needs --db own-cluster), once it starts
    assert all("sqlite" in check.backends for check in applying), applying


CHECK = '''
"""A doctor check of another distribution: how many answers each operation got, as a finding of its own."""
from faultlab.doctor.contract import Check
from faultlab.doctor.report import Finding


class EveryAnswer(Check):
    name = "every answer, counted"

    def operation(self, ctx, exercised, found):
        return [Finding("answers counted", exercised.operation.label, f"{len(exercised.checked.statuses)} answers")]
'''


def test_a_check_from_another_distribution_runs_through_its_entry_point(tmp_path: Path) -> None:
    from faultlab.doctor.checks import ENTRY_POINT_GROUP

    site = tmp_path / "site"
    site.mkdir()
    (site / "counting_check.py").write_text(CHECK)
    info = site / "counting_check-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: counting-check\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ncounting = counting_check:EveryAnswer\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))}
    result = run_lab("doctor", "shop:api", "--app-dir", DOCTOR_APPS, "--json", "--out", tmp_path / "o",
                     cwd=tmp_path, env=env)  # fmt: skip
    report = json.loads(result.stdout)
    counted = {f["operation"] for f in report["findings"] if f["kind"] == "answers counted"}
    assert "GET /items" in counted, (report["findings"], result.stderr)


def test_an_entry_point_that_names_no_check_is_refused_with_its_name(tmp_path: Path) -> None:
    from faultlab.doctor.checks import ENTRY_POINT_GROUP

    site = tmp_path / "site"
    site.mkdir()
    (site / "not_a_check.py").write_text("thing = 42\n")
    info = site / "not_a_check-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: not-a-check\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbogus = not_a_check:thing\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))}
    result = run_lab("doctor", "shop:api", "--app-dir", tmp_path, cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "doctor check bogus (not_a_check:thing): names 42, not a subclass" in result.stderr, result.stderr


def test_own_cluster_without_postgresql_binaries_is_a_usage_error_before_anything_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faultlab.backends.cluster import INSTALL_HINT
    from faultlab.doctor import checkup, store
    from faultlab.errors import UsageError

    monkeypatch.setattr(store, "cluster_problem", lambda: f"no PostgreSQL server binaries found; {INSTALL_HINT}")
    monkeypatch.setattr(checkup, "make_run_dir", lambda name: pytest.fail("a run dir was made"))
    with pytest.raises(UsageError, match=r"--db own-cluster: no PostgreSQL server binaries found; install"):
        checkup.checkup(None, "app.main:app", app_dir=Path("."), own_cluster=True)  # type: ignore[arg-type]
