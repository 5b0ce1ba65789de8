"""Find and load experiment files: the built-in catalogue plus any directories the user adds."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from lab import registry, variants
from lab.errors import ExperimentFileError, UnknownNameError, UsageError
from lab.spec import Experiment

__all__ = ["CATALOGUE_DIR", "Catalogue", "Entry", "load_catalogue", "load_file"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CATALOGUE_DIR = PROJECT_ROOT / "experiments"
SUFFIX = ".toml"


@dataclass(frozen=True)
class Entry:
    experiment: Experiment
    path: Path


class Catalogue:
    def __init__(self, entries: Iterable[Entry]) -> None:
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            name = entry.experiment.name
            if name in self._entries:
                raise UsageError(
                    f"two experiments are named {name!r}: {self._entries[name].path} and {entry.path}; rename one"
                )
            self._entries[name] = entry

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.experiment.name))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError("experiment", name, self._entries, hint="See: python run_lab.py --list") from None


def load_file(path: Path) -> Experiment:
    """Parse and validate one file; every problem is reported with its field, before anything runs."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ExperimentFileError(path, ["the file is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentFileError(path, [f"TOML syntax: {exc}"]) from None
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ExperimentFileError(path, _problems(exc)) from None
    problems = (
        []
        if experiment.name == path.stem
        else [f"name: {experiment.name!r} must match the file name ({path.stem!r}), so that it can be found by name"]
    )
    problems += [
        f"{run}.variant: {problem}"
        for run in ("fault", "fix")
        if (problem := variants.problem_with(getattr(experiment, run).variant))
    ]
    for run in ("fault", "fix"):
        reference = getattr(experiment.code, run)
        if reference is not None:
            try:
                variants.source_of(reference)
            except LookupError as exc:
                problems.append(f"code.{run}: {exc}")
    if problems:
        raise ExperimentFileError(path, problems)
    return experiment


_STEP_KINDS = {"request", "action", "probe"}
MATCHER_HINT = 'expected a number, true/false, text, or a table such as { min = 1 } or { contains = "..." }'


def _problems(exc: ValidationError) -> list[str]:
    """Pydantic's errors in a person's terms: 1-based step numbers, one line per field."""
    problems: list[str] = []
    for error in exc.errors():
        loc = _readable_location(list(error["loc"]))
        if len(loc) > 3 and loc[-4] == "expect":  # steps[n].expect.<run>.<observation>.<union member>
            problem = f"{'.'.join(loc[:-1])}: {MATCHER_HINT}"
        else:
            problem = f"{'.'.join(loc) or '(top level)'}: {_message(error)}"
        if problem not in problems:
            problems.append(problem)
    return problems


def _readable_location(loc: list[object]) -> list[str]:
    """``("steps", 0, "request", "path")`` -> ``["steps[1]", "path"]``: 1-based, without pydantic's tag."""
    parts: list[str] = []
    index = 0
    while index < len(loc):
        part = loc[index]
        if part == "steps" and index + 1 < len(loc) and isinstance(loc[index + 1], int):
            parts.append(f"steps[{loc[index + 1] + 1}]")  # type: ignore[operator]
            index += 2
            if index < len(loc) and loc[index] in _STEP_KINDS:
                index += 1  # the discriminator's tag
                if loc[index - 1] == "action" and index < len(loc) and loc[index] in registry.actions():
                    index += 1  # and the action's own tag
            continue
        parts.append(str(part))
        index += 1
    return parts


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (a typo?)"
    if kind == "union_tag_invalid":
        field = str(error["ctx"]["discriminator"]).strip("'")
        return f"{field} must be one of {error['ctx']['expected_tags']}, not {error['ctx']['tag']}"
    if kind == "union_tag_not_found":
        return "every step needs kind = 'request', 'action' or 'probe'"
    return str(error["msg"]).removeprefix("Value error, ")


def load_catalogue(extra_dirs: Iterable[Path] = ()) -> Catalogue:
    entries = []
    for directory in (CATALOGUE_DIR, *extra_dirs):
        if not directory.is_dir():
            raise UsageError(f"--experiments {directory}: not a directory of {SUFFIX} experiment files")
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            entries.append(Entry(load_file(path), path))
    return Catalogue(entries)
