"""``python run_lab.py``: the command line. It owns the terminal; the library only returns data."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from faultlab import variants
from faultlab.cli.options import (
    Options,
    add_run_arguments,
    applicable,
    backend_choice,
    check_junit,
    check_out_dir,
    check_report_places,
    check_temp_dir,
    select,
)
from faultlab.cli.progress import print_catalogue
from faultlab.cli.runs import run_all, sweep_left_behind
from faultlab.errors import PluginError, UsageError
from faultlab.exit_codes import ExitCode
from faultlab.interrupts import raise_interrupt
from faultlab.model.catalogue import load_catalogue
from faultlab.plugins.registry import Registry, load_plugins

__all__ = ["COMMANDS", "main", "parser"]

COMMANDS = frozenset({"run", "validate", "list", "fix", "check", "progress", "doctor"})  # also no experiment's name

# In a checkout, run_lab.py; installed, the console script.
PROG = "python run_lab.py" if (variants.PROJECT_ROOT / "run_lab.py").is_file() else "faultlab"
EXIT_CODES = (
    "Exit codes: 0 as expected (or done), 1 not as expected (or an error), 2 usage error, 3 incomplete (the "
    "doctor could not look everywhere), 130 interrupted."
)


def parser() -> argparse.ArgumentParser:
    """Every subcommand, each with its own options; ``NAME...`` alone is short for ``run NAME...``."""
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Run fault-injection experiments on a real server: the fault, then the fix. "
        f"'{PROG} NAME...' is short for '{PROG} run NAME...'; '{PROG}' alone lists the catalogue.",
        epilog=EXIT_CODES,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="run experiments: the fault, then the fix (the default command)")
    add_run_arguments(run, "experiments to run, or 'all'")
    validate = commands.add_parser(
        "validate", help="run experiments and check that their expectations tell the fault from the fix"
    )
    add_run_arguments(validate, "experiments to validate, or 'all'")
    validate.set_defaults(validate=True)
    listing = commands.add_parser("list", help="list the experiments")
    listing.add_argument("--json", action="store_true", help="as JSON on stdout")
    listing.add_argument("--experiments", type=Path, action="append", default=[], metavar="DIR",
                         help="also load the experiment files (*.toml) in DIR")  # fmt: skip
    listing.set_defaults(list=True, names=[])
    for command in (run, validate, listing):
        command.set_defaults(command_run=_run)
    from faultlab.doctor.arguments import add_command as add_doctor
    from faultlab.learn.commands import add_commands as add_learn

    add_learn(commands)
    add_doctor(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    top = parser()
    argv = _command_first(argv, _takes_value(top))
    try:
        args = top.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage line, or the help
        return ExitCode.USAGE if exit_.code else ExitCode.OK
    try:
        registry = load_plugins()  # once, for the whole command: every part that needs it is given it
    except PluginError as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if getattr(args, "json", False):
            print(json.dumps({"exit_code": ExitCode.USAGE, "error": str(exc)}, indent=2))
        return ExitCode.USAGE
    code: int = args.command_run(args, registry)
    return code


def _takes_value(top: argparse.ArgumentParser) -> frozenset[str]:
    """The options of ``run`` that take a value: in ``--out DIR validate``, DIR is not the command."""
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    run = commands.choices["run"]
    return frozenset(s for a in run._actions if a.option_strings and a.nargs != 0 for s in a.option_strings)


def _command_first(argv: list[str], takes_value: frozenset[str]) -> list[str]:
    """The subcommand first, as argparse wants it: ``--experiments DIR validate X`` (the order before
    subcommands) still works, and a line with no command word runs ``run``."""
    if argv and argv[0] in ("-h", "--help"):
        return argv
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            break
        if not word.startswith("-"):
            if word in COMMANDS:
                return [word, *argv[:index], *argv[index + 1 :]]
            break
        index += 2 if word in takes_value else 1
    return ["run", *argv]


def _run(args: argparse.Namespace, registry: Registry) -> int:
    """``run``, ``validate`` and ``list``."""
    validate, names = getattr(args, "validate", False), args.names
    console = Console(stderr=args.json, highlight=False)
    errors = Console(stderr=True, highlight=False)
    from faultlab.running.parallel import OPTIONS_ENV

    if (given := os.environ.get(OPTIONS_ENV)) is not None:
        return as_child(registry, args.names, Options.from_parent(given), errors)
    try:
        catalogue = load_catalogue(registry, args.experiments)
        if args.list and args.json:
            listing = [
                {"name": e.experiment.name, "title": e.experiment.title, "backends": list(e.experiment.backends),
                 "fix_it_yourself": e.experiment.learn is not None, "file": str(e.path)}
                for e in catalogue
            ]  # fmt: skip
            print(json.dumps({"exit_code": ExitCode.OK, "experiments": listing}, indent=2))
            return ExitCode.OK
        if validate and not names:
            raise UsageError(f"validate which experiments? e.g. {PROG} validate missing-yield (or all)")
        if args.list or not args.names:
            print_catalogue(console, catalogue)
            if not args.list:
                console.print(f"Run one: [bold]{PROG} missing-yield[/]   all: [bold]{PROG} all[/]")
            return ExitCode.OK
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
        variants.check_example_requirements()
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
        return run_all(registry, selected, options, console, errors)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def as_child(registry: Registry, names: list[str], options: Options, errors: Console) -> int:
    """A ``-j`` child: its experiment by name, with the parent's options (checked by the parent already)."""
    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        selected = [load_catalogue(registry, options.experiment_dirs).get(name) for name in names]
        return run_all(registry, selected, options, Console(stderr=True, highlight=False), errors)
    except UsageError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        print(json.dumps({"exit_code": ExitCode.USAGE, "error": str(exc), "experiments": []}, indent=2))
        return ExitCode.USAGE
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
