"""``python run_lab.py``: the command line. It owns the terminal; the library only returns data."""

from __future__ import annotations

import argparse
import json
import signal
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab.backends import DEFAULT_POSTGRES_URL, BackendName, postgres_admin_url, redact, require_postgres
from lab.catalogue import Catalogue, Entry, load_catalogue
from lab.errors import LabError, OutputDirError, UsageError
from lab.interrupts import raise_interrupt
from lab.results import ExperimentResult, StepResult, Verdict
from lab.spec import Experiment, RunName
from lab.summary import check_line, evidence_line

__all__ = ["main"]

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
VALIDATE = "validate"
VERDICT_STYLE = {
    Verdict.AS_EXPECTED: "bold green",
    Verdict.INTERRUPTED: "bold yellow",
    Verdict.NOT_JUDGED: "bold yellow",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python run_lab.py",
        description="Run fault-injection experiments on a real server: the fault, then the fix.",
        epilog="Exit codes: 0 every experiment behaved as expected, 1 one did not (or erred), "
        "2 usage error, 130 interrupted.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="experiments to run, or 'all'; 'validate NAME...' also checks that the expectations tell the "
        "fault from the fix (each run's expectations must fail on the other run)",
    )
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument(
        "--out", type=Path, default=Path("lab-reports"), metavar="DIR", help="report directory (default: ./lab-reports)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout (progress goes to stderr)")
    parser.add_argument(
        "--experiments",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also load the experiment files (*.toml) in DIR",
    )
    parser.add_argument(
        "--db",
        default="sqlite",
        metavar="BACKEND",
        help="sqlite (default: a file in a temp dir), or postgresql[://URL] (a throwaway database per run on that "
        f"server; default {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the runs' temp dirs (databases, logs) and print where"
    )
    return parser


class _Progress:
    """Prints each step as it finishes."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def run_started(self, run: RunName, variant: str) -> None:
        self.console.print(f"  [bold]{run} run[/] · variant [cyan]{variant}[/]")

    def step_finished(self, run: RunName, step: StepResult) -> None:
        applicable = [check for check in step.checks if check.applies]
        mark = "" if not applicable else ("[green]✓[/]" if step.passed else "[red]✗[/]")
        title = escape(step.title or step.label)
        self.console.print(f"    {step.number:>2}. {title} {mark}")
        self.console.print(f"        [dim]{escape(evidence_line(step.observation))}[/]")
        for check in step.checks:
            if check.outcome == "n/a":
                self.console.print(f"        [yellow]{escape(check_line(check))}[/]")
            elif not check.passed:
                self.console.print(f"        [red]{escape(check_line(check))}[/]")


def _print_catalogue(console: Console, catalogue: Catalogue) -> None:
    table = Table(title="faultlab experiments", title_justify="left")
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("what it shows")
    table.add_column("backends")
    for entry in catalogue:
        table.add_row(entry.experiment.name, escape(entry.experiment.title), ", ".join(entry.experiment.backends))
    console.print(table)


def _select(catalogue: Catalogue, names: list[str]) -> list[Entry]:
    if names == ["all"]:
        return list(catalogue)
    if "all" in names:
        raise UsageError("'all' runs the whole catalogue; give it alone")
    return [catalogue.get(name) for name in dict.fromkeys(names)]


def _check_out_dir(out: Path) -> Path:
    from lab.report import prepare_out_dir

    try:
        return prepare_out_dir(out)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputDirError(
            f"--out {out}: cannot write reports there ({reason}); choose a writable directory"
        ) from None


@dataclass(frozen=True)
class _Options:
    out: Path
    keep: bool
    as_json: bool
    backend: BackendName
    postgres_url: str
    validate: bool = False


def _backend(choice: str) -> tuple[BackendName, str]:
    """``--db``: sqlite, postgresql, or a PostgreSQL URL; a PostgreSQL server must answer before anything runs."""
    if choice == "sqlite":
        return "sqlite", DEFAULT_POSTGRES_URL
    if choice != "postgresql" and "://" not in choice:
        raise UsageError(f"--db {redact(choice)}: use sqlite, postgresql, or a URL such as {DEFAULT_POSTGRES_URL}")
    url = DEFAULT_POSTGRES_URL if choice == "postgresql" else postgres_admin_url(choice)
    require_postgres(url)
    return "postgresql", url


def _check_report_places(options: _Options, selected: list[Entry]) -> None:
    from lab.report import place_problem, report_place

    for entry in selected:
        if options.backend in entry.experiment.backends:
            problem = place_problem(report_place(options.out, entry.experiment.name, options.backend))
            if problem:
                raise OutputDirError(f"--out {options.out}: {problem}; move it away or choose another --out")


def _check_temp_dir() -> None:
    """Every run works in a temp dir: find out now, not after the first server has started."""
    import tempfile

    try:
        Path(tempfile.mkdtemp(prefix="faultlab-check-")).rmdir()
    except OSError as exc:
        raise UsageError(
            f"no usable temp dir ({tempfile.gettempdir()}: {exc.strerror or exc}); set TMPDIR to a writable directory"
        ) from None


def _applicable(selected: list[Entry], backend: BackendName, names: list[str]) -> list[Entry]:
    """Named one by one, every experiment must apply to the backend (``all`` skips those that do not)."""
    if names == ["all"]:
        return selected
    for entry in selected:
        if backend not in entry.experiment.backends:
            on = ", ".join(entry.experiment.backends)
            raise UsageError(
                f"{entry.experiment.name} runs on {on} only, not {backend}; "
                f"run it with --db {entry.experiment.backends[0]}"
            )
    return selected


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=args.json, highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        catalogue = load_catalogue(args.experiments)
        if args.list or not args.names:
            _print_catalogue(console, catalogue)
            if not args.list:
                console.print("Run one: [bold]python run_lab.py missing-yield[/]   all: [bold]python run_lab.py all[/]")
            return EXIT_OK
        validate = args.names[0] == VALIDATE
        names = args.names[1:] if validate else args.names
        if not names:
            raise UsageError(f"{VALIDATE} which experiments? e.g. python run_lab.py {VALIDATE} missing-yield (or all)")
        backend, postgres_url = _backend(args.db)
        selected = _applicable(_select(catalogue, names), backend, names)
        options = _Options(_check_out_dir(args.out), args.keep, args.json, backend, postgres_url, validate)
        _check_report_places(options, selected)
        _check_temp_dir()
    except UsageError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if args.json:
            print(json.dumps({"exit_code": EXIT_USAGE, "error": str(exc), "experiments": []}, indent=2))
        return EXIT_USAGE

    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        _sweep(errors, options)
        return _run_all(selected, options, console, errors)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sweep(errors: Console, options: _Options) -> None:
    """Say, in one line, what a lab that died without cleaning up left behind and this one removed."""
    from lab import sweep

    swept = sweep.Swept(temp_dirs=sweep.sweep_temp_dirs())
    if options.backend == "postgresql":
        import psycopg

        try:
            swept.databases, swept.roles = sweep.sweep_postgres(options.postgres_url)
        except psycopg.Error as exc:  # the run itself will say what is wrong with the server
            errors.print(f"[yellow]could not look for databases a dead lab left: {escape(str(exc).strip())}[/]")
    if swept:
        errors.print(f"[yellow]{escape(swept.line())}[/]", soft_wrap=True)


def _run_all(selected: list[Entry], options: _Options, console: Console, errors: Console) -> int:
    from lab.orchestrate import Interrupted, run_experiment

    summary: list[dict[str, object]] = []
    code = EXIT_OK
    try:
        for entry in selected:
            experiment = entry.experiment
            console.rule(f"[bold]{experiment.name}[/]: {escape(experiment.title)}", align="left")
            if options.backend not in experiment.backends:
                reason = f"applies to {', '.join(experiment.backends)} only"
                console.print(f"  [yellow]skipped:[/] {experiment.name} {reason}, not {options.backend}")
                summary.append({"name": experiment.name, "verdict": "skipped", "exit_code": 0, "reason": reason})
                continue
            result = run_experiment(
                entry,
                options.out,
                listener=_Progress(console),
                keep=options.keep,
                backend=options.backend,
                postgres_url=options.postgres_url,
            )
            summary.append(_summary(result))
            _print_verdict(console, result)
            if result.verdict.exit_code or (
                options.validate and not _print_baselines(console, result, experiment, summary[-1])
            ):
                code = EXIT_UNEXPECTED
    except Interrupted as interrupted:
        summary.append(_summary(interrupted.result))
        _print_verdict(console, interrupted.result)
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        code = EXIT_INTERRUPTED
    except LabError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        code = EXIT_UNEXPECTED
    if options.as_json:
        print(json.dumps({"exit_code": code, "experiments": summary}, indent=2))
    return code


def _print_baselines(
    console: Console, result: ExperimentResult, experiment: Experiment, summary: dict[str, object]
) -> bool:
    """The experiment's baselines, a line each; True when both tell the fault from the fix."""
    from lab.validate import baselines

    found = baselines(result, experiment)
    for baseline in found:
        style = "green" if baseline.tells_apart else "red"
        console.print(f"  baseline: [{style}]{escape(baseline.line())}[/]", soft_wrap=True)
    good = bool(found) and all(baseline.tells_apart for baseline in found)
    if not good:
        console.print("  [bold red]this experiment passes whether the bug is there or not: it proves nothing[/]")
    summary["tells_fault_from_fix"] = good
    return good


def _summary(result: ExperimentResult) -> dict[str, object]:
    return {
        "name": result.name,
        "backend": result.backend,
        "verdict": str(result.verdict),
        "exit_code": result.verdict.exit_code,
        "report": result.report_dir,
        "report_problem": result.report_problem,
    }


def _print_verdict(console: Console, result: ExperimentResult) -> None:
    style = VERDICT_STYLE.get(result.verdict, "bold red")
    console.print(f"  verdict: [{style}]{result.verdict}[/]")
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
