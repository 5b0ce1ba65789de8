"""Find and load experiment files: the built-in catalogue plus any directories the user adds."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from faultlab import variants
from faultlab.errors import ExperimentFileError, ExperimentFilesError, UnknownNameError, UsageError, shorten
from faultlab.model.spec import Experiment, schema
from faultlab.plugins.registry import Registry

__all__ = ["CATALOGUE_DIR", "Catalogue", "Entry", "load_catalogue", "load_file"]

PROJECT_ROOT = variants.PROJECT_ROOT
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


MAX_BYTES = 256 * 1024  # the catalogue's largest file is 8 KiB
OTHER_FORMATS = (".yaml", ".yml", ".json")
_BOM = b"\xef\xbb\xbf"


def _kind_of(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def _read(path: Path) -> str:
    """The file's text, read only if it is a regular file of a sane size (a FIFO would block, /dev/zero
    never end). A UTF-8 byte-order mark, as some Windows editors write, is accepted and dropped."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        problem = "a symbolic link to nothing" if path.is_symlink() else "no such file"
        raise ExperimentFileError(path, [problem]) from None
    except OSError as exc:
        raise ExperimentFileError(path, [f"cannot be read: {exc.strerror or exc}"]) from None
    if not stat.S_ISREG(mode):
        raise ExperimentFileError(path, [f"{_kind_of(mode)}, not an experiment file"])
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ExperimentFileError(path, [f"cannot be read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_BYTES:
        raise ExperimentFileError(path, [f"larger than {MAX_BYTES // 1024} KiB: not an experiment file"])
    try:
        return data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError:
        utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
        hint = "it is UTF-16: save it as UTF-8" if utf16 else "save it as UTF-8"
        raise ExperimentFileError(path, [f"the file is not UTF-8 text ({hint})"]) from None


def load_file(registry: Registry, path: Path) -> Experiment:
    """Parse and validate one file against ``registry``'s schema; every problem is reported with its field,
    before anything runs."""
    try:
        data = tomllib.loads(_read(path))
        experiment = schema(registry).model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentFileError(path, [f"TOML syntax: {exc}"]) from None
    except RecursionError:
        raise ExperimentFileError(path, ["nested too deeply to be an experiment"]) from None
    except ValidationError as exc:
        raise ExperimentFileError(path, _problems(exc, registry)) from None
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


def _problems(exc: ValidationError, registry: Registry) -> list[str]:
    """Pydantic's errors in a person's terms: 1-based step numbers, one line per problem."""
    problems: list[str] = []
    for error in exc.errors():
        loc = _readable_location(list(error["loc"]), registry)
        if len(loc) > 3 and loc[-4] == "expect":  # steps[n].expect.<run>.<observation>.<union member>
            lines = [f"{'.'.join(loc[:-1])}: {MATCHER_HINT}"]
        else:  # a validator that found several problems says each on a line of its message
            lines = [f"{'.'.join(loc) or '(top level)'}: {line}" for line in _message(error).splitlines()]
        problems += [line for line in lines if line not in problems]
    return problems


def _readable_location(loc: list[object], registry: Registry) -> list[str]:
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
                if loc[index - 1] == "action" and index < len(loc) and loc[index] in registry.actions:
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
        return f"{field} must be one of {error['ctx']['expected_tags']}, not {shorten(str(error['ctx']['tag']))}"
    if kind == "union_tag_not_found":
        return "every step needs kind = 'request', 'action' or 'probe'"
    return str(error["msg"]).removeprefix("Value error, ")


def load_catalogue(registry: Registry, extra_dirs: Iterable[Path] = ()) -> Catalogue:
    """Every experiment file of the catalogue and of ``extra_dirs``, read with ``registry``'s schema; every bad
    file is reported, not the first."""
    entries, errors = [], []
    for directory in (CATALOGUE_DIR, *extra_dirs):
        if not directory.is_dir():
            raise UsageError(f"--experiments {directory}: not a directory of {SUFFIX} experiment files")
        for path in sorted(directory.iterdir()):
            if path.name.startswith("."):
                continue  # an editor's lock or swap file (.#name.toml), or a hidden file: not the user's experiment
            try:
                if path.suffix == SUFFIX:
                    entries.append(Entry(load_file(registry, path), path))
                elif path.suffix in OTHER_FORMATS:
                    raise ExperimentFileError(
                        path, [f"experiments are TOML files ({SUFFIX}): convert it, or move it out of {directory}"]
                    )
            except ExperimentFileError as exc:
                errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExperimentFilesError(errors)
    return Catalogue(entries)
