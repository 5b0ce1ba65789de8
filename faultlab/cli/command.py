"""``python run_lab.py``: the command line. It owns the terminal; the library only returns data."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace

from rich.console import Console
from rich.markup import escape

from faultlab.cli.options import (
    VALIDATE,
    Options,
    applicable,
    backend_choice,
    check_junit,
    check_out_dir,
    check_report_places,
    check_temp_dir,
    parser,
    select,
)
from faultlab.cli.progress import print_catalogue
from faultlab.cli.runs import run_all, sweep_left_behind
from faultlab.errors import UsageError
from faultlab.exit_codes import ExitCode
from faultlab.interrupts import raise_interrupt
from faultlab.model.catalogue import load_catalogue

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("fix", "check", "progress"):
        from faultlab.learn.commands import main as learn_main

        return learn_main(argv)
    if argv and argv[0] == "doctor":
        from faultlab.doctor.command import main as doctor_main

        return doctor_main(argv[1:])
    args = parser().parse_args(argv)
    console = Console(stderr=args.json, highlight=False)
    errors = Console(stderr=True, highlight=False)
    from faultlab.running.parallel import OPTIONS_ENV

    if (given := os.environ.get(OPTIONS_ENV)) is not None:
        return as_child(args.names, Options.from_parent(given), errors)
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
            print_catalogue(console, catalogue)
            if not args.list:
                console.print("Run one: [bold]python run_lab.py missing-yield[/]   all: [bold]python run_lab.py all[/]")
            return ExitCode.OK
        validate = args.names[0] == VALIDATE
        names = args.names[1:] if validate else args.names
        if not names:
            raise UsageError(f"{VALIDATE} which experiments? e.g. python run_lab.py {VALIDATE} missing-yield (or all)")
        backend, postgres_url = backend_choice(args.db)
        selected = applicable(select(catalogue, names), backend, names)
        options = Options(
            check_out_dir(args.out),
            args.keep,
            args.json,
            backend,
            postgres_url,
            validate,
            check_junit(args.junit),
            args.open,
            jobs=args.jobs,
            experiment_dirs=tuple(args.experiments),
            sequential=args.sequential,
        )
        check_report_places(options, selected)
        check_temp_dir()
        if args.predict:
            from faultlab.learn.predict import ask

            options = replace(options, predictions={e.experiment.name: ask(console, e.experiment) for e in selected})
    except UsageError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if args.json:
            print(json.dumps({"exit_code": ExitCode.USAGE, "error": str(exc), "experiments": []}, indent=2))
        return ExitCode.USAGE

    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        sweep_left_behind(errors, options)
        return run_all(selected, options, console, errors)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def as_child(names: list[str], options: Options, errors: Console) -> int:
    """A ``-j`` child: its experiment by name, with the parent's options (checked by the parent already)."""
    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        selected = [load_catalogue(options.experiment_dirs).get(name) for name in names]
        return run_all(selected, options, Console(stderr=True, highlight=False), errors)
    except UsageError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        print(json.dumps({"exit_code": ExitCode.USAGE, "error": str(exc), "experiments": []}, indent=2))
        return ExitCode.USAGE
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
