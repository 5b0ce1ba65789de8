"""Experiments one after another in this process, or ``-j N`` at a time in processes of their own."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from faultlab.cli.options import Options
from faultlab.cli.progress import Progress
from faultlab.cli.verdicts import print_baselines, print_verdict, summary_of, write_outputs
from faultlab.errors import LabError
from faultlab.exit_codes import ExitCode
from faultlab.model.catalogue import Entry
from faultlab.model.results import ExperimentResult, Verdict
from faultlab.plugins.registry import Registry

__all__ = ["run_all", "sweep_left_behind"]


def sweep_left_behind(errors: Console, options: Options) -> None:
    """Say, in one line, what a lab that died without cleaning up left behind and this one removed."""
    from faultlab.backends import sweep

    swept = sweep.Swept(temp_dirs=sweep.sweep_temp_dirs())
    if options.backend == "postgresql":
        import psycopg

        try:
            swept.databases, swept.roles = sweep.sweep_postgres(options.postgres_url)
        except psycopg.Error as exc:  # the run itself will say what is wrong with the server
            errors.print(f"[yellow]could not look for databases a dead lab left: {escape(str(exc).strip())}[/]")
    if swept:
        errors.print(f"[yellow]{escape(swept.line())}[/]", soft_wrap=True)


def run_all(registry: Registry, selected: list[Entry], options: Options, console: Console, errors: Console) -> int:
    from faultlab.model.setup import machine_problem
    from faultlab.running.orchestrate import Interrupted, run_experiment

    summary: list[dict[str, object]] = []
    results: list[ExperimentResult] = []
    skipped: dict[str, str] = {}
    code = ExitCode.OK
    runnable = [entry for entry in selected if options.backend in entry.experiment.backends]
    if options.jobs > 1 and len(runnable) > 1 and not options.predictions:
        return run_parallel(selected, options, console, errors)
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
            if missing := machine_problem(experiment.setup):
                console.print(f"  [yellow]skipped:[/] {experiment.name} {escape(missing)}")
                summary.append({"name": experiment.name, "verdict": "skipped", "exit_code": 0, "reason": missing})
                skipped[experiment.name] = missing
                continue
            result = run_experiment(
                registry,
                entry,
                options.out,
                listener=Progress(console, registry),
                keep=options.keep,
                backend=options.backend,
                postgres_url=options.postgres_url,
                together=not options.sequential,
            )
            summary.append(summary_of(result))
            results.append(result)
            print_verdict(console, result)
            if options.predictions:
                from faultlab.learn.predict import show

                show(registry, console, experiment, result, options.predictions.get(experiment.name, []))
            if options.validate:
                print_baselines(console, result)
            if result.verdict.exit_code:
                code = ExitCode.NOT_OK
    except Interrupted as interrupted:
        summary.append(summary_of(interrupted.result))
        results.append(interrupted.result)
        print_verdict(console, interrupted.result)
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
    code = max(code, write_outputs(results, skipped, options, console, errors), key=lambda c: c != ExitCode.OK)
    if options.as_json:
        print(json.dumps({"exit_code": code, "experiments": summary}, indent=2))
    return code


def run_parallel(selected: list[Entry], options: Options, console: Console, errors: Console) -> int:
    """``all`` with ``-j N``: each experiment in a lab process of its own; each shown as one block when done."""
    from faultlab.running.parallel import OPTIONS_ENV, Child, ChildResult, child_env, run_children

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
    code = max(code, write_outputs(results, skipped, options, console, errors), key=lambda c: c != ExitCode.OK)
    if options.as_json:
        print(json.dumps({"exit_code": code, "experiments": summary}, indent=2))
    return code
