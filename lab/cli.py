"""``python run_lab.py``: the command line. It owns the terminal; the library only returns data."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from lab.backends import DEFAULT_POSTGRES_URL, BackendName, database_choice
from lab.catalogue import Catalogue, Entry, load_catalogue
from lab.errors import LabError, OutputDirError, UsageError
from lab.exit_codes import ExitCode
from lab.interrupts import lost_terminal, raise_interrupt
from lab.results import ExperimentResult, StepResult, Verdict
from lab.spec import RunName
from lab.summary import check_line, witness_parts

__all__ = ["main"]

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
    parser.add_argument(
        "--junit", type=Path, metavar="FILE", help="also write JUnit XML: one test case per experiment and backend"
    )
    parser.add_argument("--open", action="store_true", help="open the run's index page in a browser at the end")
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=os.cpu_count() or 1,
        metavar="N",
        help="run up to N experiments at a time, each in a lab process of its own (default: the number of cores)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run the fix run after the fault run, never beside it (experiments marked 'together' otherwise run "
        "both at once, each on its own server)",
    )
    parser.add_argument(
        "--predict", action="store_true", help="answer the experiment's questions first; see them beside what happened"
    )
    parser.epilog = (parser.epilog or "") + (
        " Fix it yourself: 'fix NAME' writes the broken code and a task, 'check NAME' judges your fix, "
        "'progress' lists what you fixed (python run_lab.py check --help)."
    )
    return parser


class _Progress:
    """Prints each step as it finishes, wrapped under its own indent; says what a mark or a witness's
    words mean the first time they appear."""

    LEGEND = "✓ every expectation of the step held, ✗ one did not; per expectation: ✅ held, ❌ did not, ➖ n/a here"

    def __init__(self, console: Console) -> None:
        self.console = console
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
        for title, part in witness_parts(step.observation):
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
    junit: Path | None = None
    open_index: bool = False
    predictions: dict[str, list[str]] | None = None
    jobs: int = 1
    experiment_dirs: tuple[Path, ...] = ()
    sequential: bool = False

    def for_child(self) -> str:
        """What a ``-j`` child runs with, as data (every option, a new one included, reaches it): one
        experiment at a time, a JSON summary for the parent, and the parent's index, JUnit and browser."""
        child = replace(self, as_json=True, jobs=1, junit=None, open_index=False, predictions=None)
        data = asdict(child) | {"out": str(child.out), "experiment_dirs": [str(d) for d in child.experiment_dirs]}
        return json.dumps(data)

    @classmethod
    def from_parent(cls, text: str) -> _Options:
        data = json.loads(text)
        return cls(**data | {"out": Path(data["out"]), "experiment_dirs": tuple(map(Path, data["experiment_dirs"]))})


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of experiments") from None
    if not 1 <= jobs <= 64:
        raise argparse.ArgumentTypeError("use 1 to 64")
    return jobs


def _check_junit(path: Path | None) -> Path | None:
    if path is not None and (path.is_dir() or path.is_symlink()):
        raise UsageError(f"--junit {path}: a directory or a symbolic link is there; name a file to write")
    return path


def _backend(choice: str) -> tuple[BackendName, str]:
    url = database_choice(choice)
    return ("sqlite", DEFAULT_POSTGRES_URL) if url is None else ("postgresql", url)


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
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("fix", "check", "progress"):
        from lab.learn.commands import main as learn_main

        return learn_main(argv)
    if argv and argv[0] == "doctor":
        from lab.doctor.command import main as doctor_main

        return doctor_main(argv[1:])
    args = _parser().parse_args(argv)
    console = Console(stderr=args.json, highlight=False)
    errors = Console(stderr=True, highlight=False)
    from lab.parallel import OPTIONS_ENV

    if (given := os.environ.get(OPTIONS_ENV)) is not None:
        return _as_child(args.names, _Options.from_parent(given), errors)
    try:
        catalogue = load_catalogue(args.experiments)
        if args.list and args.json:
            listing = [
                {"name": e.experiment.name, "title": e.experiment.title, "backends": list(e.experiment.backends),
                 "fix_it_yourself": e.experiment.learn is not None, "file": str(e.path)}
                for e in catalogue
            ]  # fmt: skip
            print(json.dumps({"exit_code": ExitCode.OK, "experiments": listing}, indent=2))
            return ExitCode.OK
        if args.list or not args.names:
            _print_catalogue(console, catalogue)
            if not args.list:
                console.print("Run one: [bold]python run_lab.py missing-yield[/]   all: [bold]python run_lab.py all[/]")
            return ExitCode.OK
        validate = args.names[0] == VALIDATE
        names = args.names[1:] if validate else args.names
        if not names:
            raise UsageError(f"{VALIDATE} which experiments? e.g. python run_lab.py {VALIDATE} missing-yield (or all)")
        backend, postgres_url = _backend(args.db)
        selected = _applicable(_select(catalogue, names), backend, names)
        options = _Options(
            _check_out_dir(args.out),
            args.keep,
            args.json,
            backend,
            postgres_url,
            validate,
            _check_junit(args.junit),
            args.open,
            jobs=args.jobs,
            experiment_dirs=tuple(args.experiments),
            sequential=args.sequential,
        )
        _check_report_places(options, selected)
        _check_temp_dir()
        if args.predict:
            from lab.learn.predict import ask

            options = replace(options, predictions={e.experiment.name: ask(console, e.experiment) for e in selected})
    except UsageError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if args.json:
            print(json.dumps({"exit_code": ExitCode.USAGE, "error": str(exc), "experiments": []}, indent=2))
        return ExitCode.USAGE

    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        _sweep(errors, options)
        return _run_all(selected, options, console, errors)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _as_child(names: list[str], options: _Options, errors: Console) -> int:
    """A ``-j`` child: its experiment by name, with the parent's options (checked by the parent already)."""
    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        selected = [load_catalogue(options.experiment_dirs).get(name) for name in names]
        return _run_all(selected, options, Console(stderr=True, highlight=False), errors)
    except UsageError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        print(json.dumps({"exit_code": ExitCode.USAGE, "error": str(exc), "experiments": []}, indent=2))
        return ExitCode.USAGE
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
    results: list[ExperimentResult] = []
    skipped: dict[str, str] = {}
    code = ExitCode.OK
    runnable = [entry for entry in selected if options.backend in entry.experiment.backends]
    if options.jobs > 1 and len(runnable) > 1 and not options.predictions:
        return _run_parallel(selected, options, console, errors)
    try:
        for entry in selected:
            experiment = entry.experiment
            console.rule(f"[bold]{experiment.name}[/]: {escape(experiment.title)}", align="left")
            if options.backend not in experiment.backends:
                reason = f"applies to {', '.join(experiment.backends)} only"
                console.print(f"  [yellow]skipped:[/] {experiment.name} {reason}, not {options.backend}")
                summary.append({"name": experiment.name, "verdict": "skipped", "exit_code": 0, "reason": reason})
                skipped[experiment.name] = reason
                continue
            result = run_experiment(
                entry,
                options.out,
                listener=_Progress(console),
                keep=options.keep,
                backend=options.backend,
                postgres_url=options.postgres_url,
                together=not options.sequential,
            )
            summary.append(_summary(result))
            results.append(result)
            _print_verdict(console, result)
            if options.predictions:
                from lab.learn.predict import show

                show(console, experiment, result, options.predictions.get(experiment.name, []))
            if options.validate:
                _print_baselines(console, result)
            if result.verdict.exit_code:
                code = ExitCode.NOT_OK
    except Interrupted as interrupted:
        summary.append(_summary(interrupted.result))
        results.append(interrupted.result)
        _print_verdict(console, interrupted.result)
        if interrupted.result.verdict is not Verdict.INTERRUPTED:  # the runs had ended; the Ctrl+C came after
            errors.print(
                "[yellow]interrupted[/] after the runs had ended: the verdict above stands, the exit code is 130"
            )
        code = ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        code = ExitCode.INTERRUPTED
    except LabError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        code = ExitCode.NOT_OK
    code = max(code, _write_outputs(results, skipped, options, console, errors), key=lambda c: c != ExitCode.OK)
    if options.as_json:
        print(json.dumps({"exit_code": code, "experiments": summary}, indent=2))
    return code


def _run_parallel(selected: list[Entry], options: _Options, console: Console, errors: Console) -> int:
    """``all`` with ``-j N``: each experiment in a lab process of its own; each shown as one block when done."""
    from lab.parallel import OPTIONS_ENV, Child, ChildResult, child_env, run_children

    summary: list[dict[str, object]] = []
    results: list[ExperimentResult] = []
    skipped: dict[str, str] = {}
    children = []
    for entry in selected:
        experiment = entry.experiment
        if options.backend not in experiment.backends:
            reason = f"applies to {', '.join(experiment.backends)} only"
            summary.append({"name": experiment.name, "verdict": "skipped", "exit_code": 0, "reason": reason})
            skipped[experiment.name] = reason
            continue
        children.append(Child(experiment.name, [experiment.name]))
    if skipped:
        elsewhere = sorted({b for e in selected if e.experiment.name in skipped for b in e.experiment.backends})
        where = " or ".join(f"--db {backend}" for backend in elsewhere)
        console.print(
            f"[yellow]skipped[/] (not on {options.backend}; run them with {where}): {escape(', '.join(skipped))}",
            soft_wrap=True,
        )
    console.print(f"running {len(children)} experiments, {min(options.jobs, len(children))} at a time", soft_wrap=True)
    codes: list[int] = []

    def finished(child: ChildResult) -> None:
        console.print(Text.from_ansi(child.output.rstrip("\n")))
        codes.append(child.exit_code)
        if child.summary:
            summary.append(child.summary)
        if child.result:
            results.append(child.result)

    env = child_env(console.width, console.is_terminal and not console.no_color) | {
        OPTIONS_ENV: options.for_child()  # the URL's password stays out of the command line, as before
    }
    done, interrupted = run_children(children, options.jobs, env, finished)
    if interrupted:
        errors.print("[yellow]interrupted[/]")
        code = ExitCode.INTERRUPTED
    elif any(c == ExitCode.INTERRUPTED for c in codes):
        code = ExitCode.INTERRUPTED
    elif any(c != ExitCode.OK for c in codes) or len(done) < len(children):
        code = ExitCode.NOT_OK
    else:
        code = ExitCode.OK
    order = {entry.experiment.name: i for i, entry in enumerate(selected)}
    results.sort(key=lambda r: order.get(r.name, len(order)))
    code = max(code, _write_outputs(results, skipped, options, console, errors), key=lambda c: c != ExitCode.OK)
    if options.as_json:
        print(json.dumps({"exit_code": code, "experiments": summary}, indent=2))
    return code


def _write_outputs(
    results: list[ExperimentResult], skipped: dict[str, str], options: _Options, console: Console, errors: Console
) -> ExitCode:
    """The summary table (several experiments), the index page, JUnit XML. An index that cannot be written is
    said (each report says where it is); JUnit XML that cannot be written makes the exit code 1, since a CI
    reading it would otherwise see nothing."""
    if len(results) > 1:
        _print_table(console, results)
    code = ExitCode.OK
    if results and not os.environ.get("FAULTLAB_PARALLEL_CHILD"):  # lab.parallel.CHILD_ENV: the parent writes it
        from lab.html_report import write_index

        try:
            index = write_index(options.out, results)
            console.print(f"index: {escape(str(index))}", soft_wrap=True)
            if options.open_index:
                import webbrowser

                webbrowser.open(index.resolve().as_uri())
        except OSError as exc:
            errors.print(f"[yellow]could not write the index page in {escape(str(options.out))}: {escape(str(exc))}[/]")
    if options.junit is not None:
        from lab.junit import write_junit

        try:
            write_junit(options.junit, results, skipped)
            console.print(f"junit: {escape(str(options.junit))}", soft_wrap=True)
        except OSError as exc:
            errors.print(f"[red]could not write --junit {escape(str(options.junit))}: {escape(str(exc))}[/]")
            code = ExitCode.NOT_OK
    return code


def _print_table(console: Console, results: list[ExperimentResult]) -> None:
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
        told = (
            "[yellow]–[/]"
            if not result.baselines
            else ("[green]✓ yes[/]" if result.verdict is Verdict.AS_EXPECTED else "[bold red]✗ NO[/]")
        )
        table.add_row(
            escape(result.name), result.backend, mark("fault", result), mark("fix", result), told, f"{seconds:.1f} s"
        )
    console.print(table)


def _print_baselines(console: Console, result: ExperimentResult) -> None:
    """``validate``: the experiment's baselines, a line each, also when they tell the fault from the fix."""
    if not result.baselines:
        console.print(f"  [yellow]no baselines: both runs must hold first ({escape(str(result.verdict))})[/]")
    for baseline in result.baselines:
        style = "green" if baseline.tells_apart else "red"
        console.print(f"  baseline: [{style}]{escape(baseline.line())}[/]", soft_wrap=True)


def _summary(result: ExperimentResult) -> dict[str, object]:
    return {
        "name": result.name,
        "backend": result.backend,
        "verdict": str(result.verdict),
        "exit_code": result.verdict.exit_code,
        "report": result.report_dir,
        "report_problem": result.report_problem,
        "tells_fault_from_fix": (
            all(baseline.tells_apart for baseline in result.baselines) if result.baselines else None
        ),
    }


def _print_verdict(console: Console, result: ExperimentResult) -> None:
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
