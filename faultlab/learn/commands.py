"""``python run_lab.py fix|check|progress``: the learner's side of the lab.

    fix NAME [--dir DIR] [--force]            write the workspace: the broken code and TASK.md
    check NAME [--dir DIR] [--watch]          serve the learner's file in the fix run and judge it
    check NAME --hint | --solution            the next hint; the reference solution
    progress [--dir ROOT]                     what this workspace root has fixed, and what to try next

Exit codes as everywhere in the lab: 0 fixed (or done), 1 not yet, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from faultlab import variants
from faultlab.errors import LabError, UsageError
from faultlab.exit_codes import ExitCode
from faultlab.learn import predict, workspace
from faultlab.learn.progress import show_progress
from faultlab.learn.task import task_markdown
from faultlab.learn.watch import watch
from faultlab.model.catalogue import Catalogue, Entry, load_catalogue
from faultlab.model.results import StepResult
from faultlab.model.spec import Experiment, RunName
from faultlab.plugins.registry import Registry

__all__ = ["COMMANDS", "add_commands", "run"]

COMMANDS = frozenset({"fix", "check", "progress"})


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``fix``, ``check`` and ``progress``, as subcommands of the lab's command line (``faultlab.cli``)."""
    fix = commands.add_parser("fix", help="fix it yourself: a workspace with the broken code and TASK.md")
    fix.add_argument("name", metavar="NAME")
    fix.add_argument("--dir", type=Path, help="the workspace (default: ./faultlab-work/NAME)")
    fix.add_argument("--force", action="store_true", help="replace an existing workspace (your edits are lost)")
    check = commands.add_parser("check", help="judge your fix on a real server, as the lab judges its own")
    check.add_argument("name", metavar="NAME")
    check.add_argument("--dir", type=Path, help="the workspace (default: ./faultlab-work/NAME)")
    check.add_argument(
        "--db",
        metavar="BACKEND",
        help="sqlite (the default where the experiment runs on it) or postgresql[://URL]: a throwaway database there",
    )
    shown = check.add_mutually_exclusive_group()
    shown.add_argument("--hint", action="store_true", help="show the next hint (one more each time)")
    shown.add_argument("--solution", action="store_true", help="show the reference solution")
    shown.add_argument("--watch", action="store_true", help="check again on every save, until fixed or Ctrl+C")
    progress = commands.add_parser("progress", help="what you have fixed, and what to try next")
    progress.add_argument("--dir", type=Path, default=workspace.DEFAULT_ROOT, help="workspaces' root (./faultlab-work)")
    for command in (fix, check, progress):
        command.set_defaults(command_run=run)


class _Steps:
    """Each step of the check as it finishes: a mark per step, the failures in red."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def run_started(self, run: RunName, variant: str) -> None:
        self.console.print(f"  {run} run: serving [cyan]{escape(variant)}[/] on a real server")

    def step_finished(self, run: RunName, step: StepResult) -> None:
        mark = "[green]✓[/]" if step.passed else "[red]✗[/]"
        self.console.print(f"    {step.number:>2}. {escape(step.title or step.label)} {mark}")


def run(args: argparse.Namespace, registry: Registry) -> int:
    console = Console(highlight=False, soft_wrap=True)  # a command in a line must never be cut in two
    errors = Console(stderr=True, highlight=False)
    try:
        catalogue = load_catalogue(registry)
        if args.command == "progress":
            return show_progress(console, catalogue, args.dir)
        entry = catalogue.get(args.name)
        _has_a_task(catalogue, entry.experiment)
        learn = workspace.learn_of(entry.experiment)
        directory = workspace.resolve_dir(entry.experiment.name, args.dir)
        if args.command == "fix":
            return _fix(registry, console, entry.experiment, directory, args.force)
        if args.hint:
            return _hint(console, entry.experiment, directory)
        if args.solution:
            return _solution(console, entry.experiment, directory)
        if learn.file is None:
            return _predictions(registry, console, entry, directory)
        variants.check_example_requirements()
        return _check(
            registry, console, entry, directory, keep_watching=args.watch, postgres_url=_database(entry, args.db)
        )
    except UsageError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return ExitCode.USAGE
    except LabError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return ExitCode.NOT_OK
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        return ExitCode.INTERRUPTED


def _has_a_task(catalogue: Catalogue, experiment: Experiment) -> None:
    """An experiment without a task of its own may share its fault with one that has: say which."""
    if experiment.learn is not None:
        return
    same_fault = [
        entry.experiment.name
        for entry in catalogue
        if entry.experiment.learn is not None and entry.experiment.fault.variant == experiment.fault.variant
    ]
    if same_fault:
        raise UsageError(
            f"{experiment.name} has no fix-it-yourself task of its own; its fault is the one of {same_fault[0]}, "
            f"which has: python run_lab.py fix {same_fault[0]}"
        )


def _fix(registry: Registry, console: Console, experiment: Experiment, directory: Path, force: bool) -> int:
    learn = workspace.learn_of(experiment)
    task = task_markdown(registry, experiment, learn, directory)
    written = workspace.create(experiment, directory, task=task, force=force)
    console.print(f"[bold]{experiment.name}[/]: your workspace is {escape(str(directory))}")
    for path in written:
        console.print(f"  {escape(path.name)}")
    edit = f"edit {learn.file}" if learn.file else f"answer the questions in {workspace.PREDICTIONS_FILE}"
    console.print(f"Read TASK.md, {edit}, then: [bold]python run_lab.py check {experiment.name}[/]", soft_wrap=True)
    if directory != workspace.resolve_dir(experiment.name, None):
        console.print(f"  (add --dir {escape(str(directory))} when you check from elsewhere)", soft_wrap=True)
    return ExitCode.OK


def _hint(console: Console, experiment: Experiment, directory: Path) -> int:
    learn = workspace.learn_of(experiment)
    progress = workspace.load_progress(directory, experiment.name)
    number = min(progress.hints_shown + 1, len(learn.hints))
    for shown in range(1, number + 1):
        style = "bold" if shown == number else "dim"
        console.print(f"[{style}]hint {shown}/{len(learn.hints)}:[/] {escape(learn.hints[shown - 1])}", soft_wrap=True)
    if number == len(learn.hints):
        console.print(f"That was the last hint. The solution: python run_lab.py check {experiment.name} --solution")
    progress.hints_shown = number
    _save(directory, progress)
    return ExitCode.OK


def _solution(console: Console, experiment: Experiment, directory: Path) -> int:
    learn = workspace.learn_of(experiment)
    if learn.solution is None:
        console.print(f"{experiment.name} has no code to write: its lesson is in its report and in TASK.md")
        return ExitCode.OK
    where, source = variants.source_of(learn.solution)
    console.print(f"[bold]the reference solution[/] ({escape(where)}):")
    console.print(escape(source), soft_wrap=True)
    progress = workspace.load_progress(directory, experiment.name)
    progress.solution_shown = True
    _save(directory, progress)
    return ExitCode.OK


def _save(directory: Path, progress: workspace.Progress) -> None:
    """Progress is kept only in a workspace that exists: asking for a hint must not create one elsewhere."""
    if directory.is_dir():
        workspace.save_progress(directory, progress)


def _record(directory: Path, name: str, fixed: bool, headline: str) -> None:
    progress = workspace.load_progress(directory, name)
    progress.checks += 1
    progress.last_check = headline
    if fixed and progress.fixed_at is None:
        progress.fixed_at = datetime.now(UTC)
    _save(directory, progress)


def _database(entry: Entry, choice: str | None) -> str | None:
    """``check --db``: None for SQLite, else the PostgreSQL server's URL (it must answer before anything runs).
    Without ``--db``: SQLite where the experiment runs on it, PostgreSQL where it runs there only."""
    from faultlab.backends.base import DEFAULT_POSTGRES_URL, database_choice, postgres_problem

    experiment = entry.experiment
    if choice is None and "sqlite" not in experiment.backends:
        if problem := postgres_problem(os.environ.get("FAULTLAB_POSTGRES_URL") or DEFAULT_POSTGRES_URL):
            raise UsageError(f"{experiment.name} runs on PostgreSQL only, and {problem}; start one, or give --db URL")
        choice = "postgresql"
    return database_choice(choice or "sqlite")


def _check(
    registry: Registry,
    console: Console,
    entry: Entry,
    directory: Path,
    *,
    keep_watching: bool,
    postgres_url: str | None = None,
) -> int:
    from faultlab.learn.check import check_file

    experiment = entry.experiment
    learn = workspace.learn_of(experiment)
    assert learn.file is not None
    path = directory / learn.file
    # Read before the first check, so that a missing workspace is a usage error, not a failed check.
    workspace.load_progress(directory, experiment.name)
    if not path.is_file():
        raise UsageError(f"no {path}; make the workspace first: python run_lab.py fix {experiment.name}")

    def once() -> bool:
        console.rule(f"[bold]check {experiment.name}[/]: {escape(str(path))}", align="left")
        outcome = check_file(registry, entry, path, _Steps(console), postgres_url)
        _record(directory, experiment.name, outcome.fixed, outcome.headline)
        style = "bold green" if outcome.fixed else "bold red"
        console.print(f"[{style}]{escape(outcome.headline)}[/]", soft_wrap=True)
        for line in outcome.details:
            console.print(f"  {escape(line)}", soft_wrap=True)
        if outcome.fixed:
            _explain_it(console, experiment)
        else:
            console.print(f"  a hint: python run_lab.py check {experiment.name} --hint", soft_wrap=True)
            if keep_watching:
                console.print(f"[dim]watching {escape(path.name)}: save it to check again, Ctrl+C to stop[/]")
        return outcome.fixed

    if not keep_watching:
        return ExitCode.OK if once() else ExitCode.NOT_OK
    watch(path, once, lambda: console.print(f"[dim]{escape(path.name)} saved: checking again[/]"))
    return ExitCode.OK


def _explain_it(console: Console, experiment: Experiment) -> None:
    if experiment.learn is None:
        return
    console.print("[bold]Explain it[/]: can you answer these? (the answers follow)")
    for question in experiment.learn.questions:
        console.print(f"  - {escape(question.ask)}", soft_wrap=True)
        console.print(f"    [dim]{escape(question.answer.strip())}[/]", soft_wrap=True)


def _predictions(registry: Registry, console: Console, entry: Entry, directory: Path) -> int:
    """A task without code: the learner's written predictions, then the experiment, then both side by side."""
    from faultlab.model.results import Verdict
    from faultlab.running.orchestrate import run_experiment

    experiment = entry.experiment
    answers = predict.read_answers(directory / workspace.PREDICTIONS_FILE, experiment)
    console.rule(f"[bold]{experiment.name}[/]: your predictions, then the experiment", align="left")
    result = run_experiment(registry, entry, directory / "reports", listener=_Steps(console))
    predict.show(registry, console, experiment, result, answers)
    done = result.verdict is Verdict.AS_EXPECTED
    headline = "done: compare your answers with what happened" if done else f"the experiment ended {result.verdict}"
    _record(directory, experiment.name, done, headline)
    console.print(f"[{'bold green' if done else 'bold red'}]{escape(headline)}[/]")
    if result.report_dir:
        console.print(f"  the report: {escape(str(Path(result.report_dir) / 'report.md'))}", soft_wrap=True)
    if done:
        _explain_it(console, experiment)
    return ExitCode.OK if done else ExitCode.NOT_OK
