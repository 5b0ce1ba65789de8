"""The README's reference lists are written by hand for people; these tests keep them complete."""

from __future__ import annotations

from pathlib import Path

from lab import registry
from lab.catalogue import load_catalogue

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_observation_and_action_is_documented() -> None:
    missing = [f"observation {name}" for name in registry.observations() if f"`{name}`" not in README]
    missing += [f"action {name}" for name in registry.actions() if f"`{name}`" not in README]
    assert not missing, f"add to README.md: {', '.join(missing)}"


def test_every_experiment_is_in_the_catalogue_table() -> None:
    missing = [entry.experiment.name for entry in load_catalogue() if f"`{entry.experiment.name}`" not in README]
    assert not missing, f"add to the README's catalogue table: {', '.join(missing)}"
