"""The command line's options: parsed, checked before anything starts, and passed to ``-j`` children as data."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from faultlab.backends.base import DEFAULT_POSTGRES_URL, BackendName, database_choice
from faultlab.errors import OutputDirError, UsageError
from faultlab.model.catalogue import Catalogue, Entry

__all__ = [
    "Options",
    "add_run_arguments",
    "applicable",
    "backend_choice",
    "check_junit",
    "check_out_dir",
    "check_report_places",
    "check_temp_dir",
    "select",
]


def add_run_arguments(parser: argparse.ArgumentParser, names_help: str) -> None:
    """The options of ``run`` and ``validate``: the experiments, where reports go, the database, how many at once."""
    parser.add_argument("names", nargs="*", metavar="NAME", help=names_help)
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
        type=jobs_option,
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


def select(catalogue: Catalogue, names: list[str]) -> list[Entry]:
    if names == ["all"]:
        return list(catalogue)
    if "all" in names:
        raise UsageError("'all' runs the whole catalogue; give it alone")
    return [catalogue.get(name) for name in dict.fromkeys(names)]


def check_out_dir(out: Path) -> Path:
    from faultlab.reports.report import prepare_out_dir

    try:
        return prepare_out_dir(out)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputDirError(
            f"--out {out}: cannot write reports there ({reason}); choose a writable directory"
        ) from None


@dataclass(frozen=True)
class Options:
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
    def from_parent(cls, text: str) -> Options:
        data = json.loads(text)
        return cls(**data | {"out": Path(data["out"]), "experiment_dirs": tuple(map(Path, data["experiment_dirs"]))})


def jobs_option(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of experiments") from None
    if not 1 <= jobs <= 64:
        raise argparse.ArgumentTypeError("use 1 to 64")
    return jobs


def check_junit(path: Path | None) -> Path | None:
    if path is not None and (path.is_dir() or path.is_symlink()):
        raise UsageError(f"--junit {path}: a directory or a symbolic link is there; name a file to write")
    return path


def backend_choice(choice: str) -> tuple[BackendName, str]:
    url = database_choice(choice)
    return ("sqlite", DEFAULT_POSTGRES_URL) if url is None else ("postgresql", url)


def check_report_places(options: Options, selected: list[Entry]) -> None:
    from faultlab.reports.report import place_problem, report_place

    for entry in selected:
        if options.backend in entry.experiment.backends:
            problem = place_problem(report_place(options.out, entry.experiment.name, options.backend))
            if problem:
                raise OutputDirError(f"--out {options.out}: {problem}; move it away or choose another --out")


def check_temp_dir() -> None:
    """Every run works in a temp dir: find out now, not after the first server has started."""
    import tempfile

    try:
        Path(tempfile.mkdtemp(prefix="faultlab-check-")).rmdir()
    except OSError as exc:
        raise UsageError(
            f"no usable temp dir ({tempfile.gettempdir()}: {exc.strerror or exc}); set TMPDIR to a writable directory"
        ) from None


def applicable(selected: list[Entry], backend: BackendName, names: list[str]) -> list[Entry]:
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
