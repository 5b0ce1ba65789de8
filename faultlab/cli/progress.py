"""What the terminal shows while an experiment runs, step by step, and the catalogue."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from faultlab.interrupts import lost_terminal
from faultlab.model.catalogue import Catalogue
from faultlab.model.results import StepResult
from faultlab.names import RunName
from faultlab.plugins.registry import Registry
from faultlab.reports.summary import check_line, witness_parts

__all__ = ["Progress", "print_catalogue"]


class Progress:
    """Prints each step as it finishes, wrapped under its own indent; says what a mark or a witness's
    words mean the first time they appear."""

    LEGEND = "✓ every expectation of the step held, ✗ one did not; per expectation: ✅ held, ❌ did not, ➖ n/a here"

    def __init__(self, console: Console, registry: Registry) -> None:
        self.console = console
        self.registry = registry  # whose witnesses put the evidence in words
        self.explained: set[str] = set()

    def _print(self, *renderables: Any) -> None:
        try:
            self.console.print(*renderables)
        except OSError as exc:
            if (hang_up := lost_terminal(exc)) is None:
                raise
            raise hang_up from None

    def _line(self, text: Text, indent: int) -> None:
        self._print(Padding(text, (0, 0, 0, indent)))

    def run_started(self, run: RunName, variant: str) -> None:
        self._print(f"  [bold]{run} run[/] · variant [cyan]{escape(variant)}[/]")

    def step_finished(self, run: RunName, step: StepResult) -> None:
        applicable = [check for check in step.checks if check.applies]
        line = Text(f"{step.number:>2}. {step.title or step.label}")
        if applicable:
            line.append(" ✓" if step.passed else " ✗", style="green" if step.passed else "bold red")
        self._line(line, 4)
        if step.checks and "marks" not in self.explained:
            self.explained.add("marks")
            self._line(Text(f"({self.LEGEND})", style="dim italic"), 8)
        evidence = Text()
        new_witnesses = []
        for title, part in witness_parts(self.registry, step.observation):
            if evidence:
                evidence.append(" · ", style="dim")
            evidence.append(part, style="red" if part.startswith("server") else "dim")
            if title and title not in self.explained:
                self.explained.add(title)
                new_witnesses.append(f"{_words_of(part)}: {title}")
        self._line(evidence, 8)
        if new_witnesses:
            self._line(Text("(" + "; ".join(new_witnesses) + ")", style="dim italic"), 8)
        for check in step.checks:
            if check.outcome == "n/a":
                self._line(Text(check_line(check), style="yellow"), 8)
            elif not check.passed:
                self._line(Text(check_line(check), style="bold red"), 8)


def _words_of(part: str) -> str:
    """What a witness's part starts with, as its legend names it: 'pool out 3' -> 'pool out'."""
    words = []
    for token in part.split():
        word = token.rstrip(":")
        if not word.isalpha():
            break
        words.append(word)
        if token.endswith(":"):
            break
    return " ".join(words) or part


def print_catalogue(console: Console, catalogue: Catalogue) -> None:
    table = Table(title="faultlab experiments", title_justify="left")
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("what it shows")
    table.add_column("backends")
    for entry in catalogue:
        table.add_row(entry.experiment.name, escape(entry.experiment.title), ", ".join(entry.experiment.backends))
    console.print(table)
