"""The README's reference lists are written by hand for people; these tests keep them complete."""

from __future__ import annotations

from pathlib import Path

from faultlab.model.catalogue import load_catalogue
from faultlab.plugins.registry import Registry

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_observation_and_action_is_documented(registry: Registry) -> None:
    missing = [f"observation {name}" for name in registry.observations if f"`{name}`" not in README]
    missing += [f"action {name}" for name in registry.actions if f"`{name}`" not in README]
    assert not missing, f"add to README.md: {', '.join(missing)}"


def test_every_experiment_is_in_the_catalogue_table(registry: Registry) -> None:
    missing = [
        entry.experiment.name for entry in load_catalogue(registry) if f"`{entry.experiment.name}`" not in README
    ]
    assert not missing, f"add to the README's catalogue table: {', '.join(missing)}"


def test_every_verdict_is_in_the_verdict_table_with_its_exit_code() -> None:
    import re

    from faultlab.model.results import Verdict

    rows = {
        name: int(code)
        for line in README.splitlines()
        if line.startswith("| `") and (code := line.rsplit("|", 2)[-2].strip()).isdigit()
        for name in re.findall(r"`([a-z ,]+)`", line.split("|")[1])
    }
    documented = {verdict: rows.get(str(verdict)) for verdict in Verdict if ", " not in verdict}
    assert documented == {verdict: verdict.exit_code for verdict in documented}, documented


def test_every_doctor_verdict_is_in_its_table_with_its_exit_code() -> None:
    from typing import get_args

    from faultlab.doctor import verdict

    table = README.split("| verdict | exit code | when |", 1)[1].split("\n\n", 1)[0]
    rows = {cells[1].strip(): int(cells[2]) for line in table.splitlines()[2:] if len(cells := line.split("|")) > 3}
    expected = {
        name: verdict.judge(
            findings=name == "findings", not_run=name == "incomplete", interrupted=name == "interrupted"
        )[1]
        for name in get_args(verdict.Verdict)
    }
    assert {name: rows.get(name) for name in expected} == expected, rows
    assert rows["usage error"] == verdict.EXIT_USAGE
