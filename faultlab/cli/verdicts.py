"""What the terminal, the JSON summary, the index page and JUnit say of finished experiments."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from faultlab.cli.options import Options
from faultlab.exit_codes import ExitCode
from faultlab.model.results import ExperimentResult, Verdict
from faultlab.running.parallel import CHILD_ENV

__all__ = ["VERDICT_STYLE", "print_baselines", "print_verdict", "summary_of", "write_outputs"]


VERDICT_STYLE = {
    Verdict.AS_EXPECTED: "bold green",
    Verdict.INTERRUPTED: "bold yellow",
    Verdict.NOT_JUDGED: "bold yellow",
}


def write_outputs(
    results: list[ExperimentResult], skipped: dict[str, str], options: Options, console: Console, errors: Console
) -> ExitCode:
    """The summary table (several experiments), the index page, JUnit XML. An index that cannot be written is
    said (each report says where it is); JUnit XML that cannot be written makes the exit code 1, since a CI
    reading it would otherwise see nothing."""
    if len(results) > 1:
        print_table(console, results)
    code = ExitCode.OK
    if results and not os.environ.get(CHILD_ENV):  # a -j child's parent writes it, once for all
        from faultlab.reports.html import write_index

        try:
            index = write_index(options.out, results)
            console.print(f"index: {escape(str(index))}", soft_wrap=True)
            if options.open_index:
                import webbrowser

                webbrowser.open(index.resolve().as_uri())
        except OSError as exc:
            errors.print(f"[yellow]could not write the index page in {escape(str(options.out))}: {escape(str(exc))}[/]")
    if options.junit is not None:
        from faultlab.reports.junit import write_junit

        try:
            write_junit(options.junit, results, skipped)
            console.print(f"junit: {escape(str(options.junit))}", soft_wrap=True)
        except OSError as exc:
            errors.print(f"[red]could not write --junit {escape(str(options.junit))}: {escape(str(exc))}[/]")
            code = ExitCode.NOT_OK
    return code


def print_table(console: Console, results: list[ExperimentResult]) -> None:
    table = Table(title="Summary", title_justify="left")
    for column in ("experiment", "backend", "fault reproduced", "fix held", "told apart", "time"):
        table.add_column(column, justify="right" if column == "time" else "left")

    def mark(run: str, result: ExperimentResult) -> str:
        r = result.runs.get(run)  # type: ignore[call-overload]
        if r is None or r.status != "completed":
            return "[yellow]–[/] did not finish"
        if not r.judged:
            return "[yellow]n/a[/] not judged"
        return "[green]✓ yes[/]" if r.held else "[bold red]✗ NO[/]"

    for result in results:
        seconds = (result.ended_at - result.started_at).total_seconds() if result.ended_at else 0.0
        told = {None: "[yellow]–[/]", True: "[green]✓ yes[/]", False: "[bold red]✗ NO[/]"}[result.tells_fault_from_fix]
        table.add_row(
            escape(result.name), result.backend, mark("fault", result), mark("fix", result), told, f"{seconds:.1f} s"
        )
    console.print(table)


def print_baselines(console: Console, result: ExperimentResult) -> None:
    """``validate``: the experiment's baselines, a line each, also when they tell the fault from the fix."""
    if not result.baselines:
        console.print(f"  [yellow]no baselines: both runs must hold first ({escape(str(result.verdict))})[/]")
    for baseline in result.baselines:
        style = "green" if baseline.tells_apart else "red"
        console.print(f"  baseline: [{style}]{escape(baseline.line())}[/]", soft_wrap=True)


def summary_of(result: ExperimentResult) -> dict[str, object]:
    return {
        "name": result.name,
        "backend": result.backend,
        "verdict": str(result.verdict),
        "exit_code": result.verdict.exit_code,
        "report": result.report_dir,
        "report_problem": result.report_problem,
        "tells_fault_from_fix": result.tells_fault_from_fix,
    }


def print_verdict(console: Console, result: ExperimentResult) -> None:
    style = VERDICT_STYLE.get(result.verdict, "bold red")
    console.print(f"  verdict: [{style}]{result.verdict}[/]")
    if result.verdict is Verdict.PROVES_NOTHING:
        hollow = [baseline for baseline in result.baselines if not baseline.tells_apart]
        for baseline in hollow:
            console.print(f"  [red]{escape(baseline.line())}:[/] {escape(baseline.held_text())}", soft_wrap=True)
        console.print(
            "  [yellow]both runs held, but the experiment would pass whether the bug is there or not: give each run "
            f"a check that fails on the other run (python run_lab.py validate {escape(result.name)} explains)[/]",
            soft_wrap=True,
        )
    if result.verdict is Verdict.NOT_JUDGED:
        unjudged = ", ".join(run for run, r in result.runs.items() if not r.judged)
        console.print(
            f"  [yellow]the {unjudged} run could not be judged here: every check it has needs a witness this "
            "machine lacks (see the n/a lines). Nothing was proven either way.[/]"
        )
    for run, run_result in result.runs.items():
        if run_result.error:
            console.print(f"  [red]{run} run {run_result.status}:[/] {escape(run_result.error)}")
    if result.report_problem:
        console.print(f"  [red]{escape(result.report_problem)}[/]; it is kept here instead:", soft_wrap=True)
    if result.report_dir:
        console.print(f"  report: {escape(str(Path(result.report_dir) / 'report.md'))}", soft_wrap=True)
    if result.kept_dir:
        console.print(f"  kept: {escape(result.kept_dir)}", soft_wrap=True)
