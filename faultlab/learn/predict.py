"""Predict before you run: the experiment's questions asked before the run, the answers shown beside what
the lab then saw in the step each question is about."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from faultlab.errors import UsageError
from faultlab.model.results import ExperimentResult
from faultlab.model.spec import Experiment
from faultlab.plugins.registry import Registry
from faultlab.reports.summary import evidence_line

__all__ = ["ask", "read_answers", "show"]


def ask(console: Console, experiment: Experiment, read: Callable[[str], str] | None = None) -> list[str]:
    """Each question of ``[learn] predict``, answered on the terminal (an empty answer is allowed). The prompt
    goes where the console writes, so that ``--json`` keeps stdout for the JSON."""
    read = read or console.input
    predictions = experiment.learn.predict if experiment.learn else []
    if not predictions:
        console.print(f"{experiment.name} asks for no predictions; it runs as usual.")
        return []
    console.print(f"[bold]Predict before you run[/] ({experiment.name}): answer in a few words, then Enter.")
    answers = []
    for number, prediction in enumerate(predictions, 1):
        console.print(f"  {number}. {escape(prediction.ask)}")
        try:
            answers.append(read("     your answer: ").strip())
        except EOFError:
            answers.append("")
    return answers


def read_answers(path: Path, experiment: Experiment) -> list[str]:
    """The answers written in a workspace's predictions file; every question must have one."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no {path}; make the workspace first: python run_lab.py fix {experiment.name}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f'{path}: {exc}; write each answer in quotes, e.g. answer_1 = "a 500"') from None
    count = len(experiment.learn.predict) if experiment.learn else 0
    answers = [str(data.get(f"answer_{number}", "")).strip() for number in range(1, count + 1)]
    missing = [str(number) for number, answer in enumerate(answers, 1) if not answer]
    if missing:
        raise UsageError(f"{path}: answer question {', '.join(missing)} first (predict, then run)")
    return answers


def show(
    registry: Registry, console: Console, experiment: Experiment, result: ExperimentResult, answers: list[str]
) -> None:
    if not answers or experiment.learn is None:
        return
    console.print("  [bold]your predictions, and what happened[/]")
    for number, (prediction, answer) in enumerate(zip(experiment.learn.predict, answers, strict=False), 1):
        run = result.runs.get(prediction.run)
        step = next((s for s in run.steps if s.number == prediction.step), None) if run else None
        seen = evidence_line(registry, step.observation) if step else "(the run did not get that far)"
        console.print(f"  {number}. {escape(prediction.ask)}", soft_wrap=True)
        console.print(f"     you said: [cyan]{escape(answer or '(no answer)')}[/]", soft_wrap=True)
        where = f"{prediction.run} run, step {prediction.step}"
        console.print(f"     the lab saw ({where}): {escape(seen)}", soft_wrap=True)
