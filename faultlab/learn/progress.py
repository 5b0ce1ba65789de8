"""``python run_lab.py progress``: what a workspace root has fixed, in the order a newcomer meets the tasks, and
what to try next (read from each workspace's progress file, ``faultlab.learn.workspace``)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from faultlab.errors import UsageError
from faultlab.exit_codes import ExitCode
from faultlab.learn import workspace
from faultlab.model.catalogue import Catalogue

__all__ = ["ORDER", "show_progress"]

# The order a newcomer meets the faults in: the seed tutorial's first, then the rest of the catalogue.
ORDER = (
    "missing-yield", "return-with-finally", "no-commit", "detached-instance", "missing-response-schema",
    "n-plus-one", "stale-schema", "deleted-db", "shared-session", "engine-per-request", "async-blocking",
    "stale-connection", "async-implicit-io", "async-shared-session", "async-naive-datetime",
    "async-engine-other-loop",
)  # fmt: skip


def show_progress(console: Console, catalogue: Catalogue, root: Path) -> int:
    """The table of ``progress``: each task in the order a newcomer meets it, fixed or not, and the next one."""
    root = root.expanduser().resolve()
    if not root.is_dir():
        console.print(
            f"no workspaces in {escape(str(root))} yet: python run_lab.py fix {ORDER[0]} makes the first one",
            soft_wrap=True,
        )
        return ExitCode.OK
    learnable = [entry.experiment.name for entry in catalogue if entry.experiment.learn is not None]
    ordered = [name for name in ORDER if name in learnable] + [n for n in learnable if n not in ORDER]
    table = Table(title=f"your progress ({root})", title_justify="left")
    table.add_column("experiment", style="cyan", no_wrap=True)
    table.add_column("fixed")
    table.add_column("checks", justify="right")
    table.add_column("hints", justify="right")
    fixed: set[str] = set()
    for name in ordered:
        directory = root / name
        if not (directory / workspace.PROGRESS_FILE).is_file():
            table.add_row(name, "[dim]not started[/]", "", "")
            continue
        try:
            progress = workspace.load_progress(directory, name)
        except UsageError as exc:
            table.add_row(name, f"[red]{escape(str(exc))}[/]", "", "")
            continue
        if progress.fixed_at is not None:
            fixed.add(name)
        when = progress.fixed_at.strftime("%Y-%m-%d %H:%M UTC") if progress.fixed_at else "not yet"
        table.add_row(name, when, str(progress.checks), str(progress.hints_shown))
    console.print(table)
    upcoming = [name for name in ordered if name not in fixed]
    if upcoming:
        console.print(f"next: [bold]python run_lab.py fix {upcoming[0]}[/]  ({len(fixed)} of {len(ordered)} fixed)")
    else:
        console.print(f"every experiment with a task is fixed ({len(fixed)}); try: python run_lab.py all")
    return ExitCode.OK
