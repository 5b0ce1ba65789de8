"""The doctor's checks keep their contract (``faultlab.doctor.contract``): the built-in ones are refused at start
if they do not, and a check of the other database is listed as not applicable, once per name."""

from __future__ import annotations

import pytest


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
        ("idle in transaction", "PostgreSQL only", "run with --db postgresql to include it"),
        ("stale pooled connections", "PostgreSQL only", "run with --db postgresql to include it"),
    ], report.not_applicable
    assert all("sqlite" in check.backends for check in applying), applying
