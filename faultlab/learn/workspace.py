"""The learner's workspace: the broken code as one editable file, ``TASK.md``, and ``progress.json``.

A workspace lives outside the project's packages (``./faultlab-work/NAME/`` by default) and the lab writes
nothing there but these files (and, for a task without code, the report of the learner's run).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from faultlab import variants
from faultlab.errors import UsageError
from faultlab.model.spec import Experiment, Learn

__all__ = [
    "DEFAULT_ROOT",
    "PREDICTIONS_FILE",
    "Progress",
    "create",
    "learn_of",
    "load_progress",
    "resolve_dir",
    "save_progress",
    "starter_text",
]

DEFAULT_ROOT = Path("faultlab-work")
TASK_FILE = "TASK.md"
PROGRESS_FILE = "progress.json"
PREDICTIONS_FILE = "predictions.toml"
PACKAGES = ("app", "faults", "faultlab", "experiments")
_BUG_COMMENT = re.compile(r"[ \t]*# BUG\b.*$", re.MULTILINE)


class Progress(BaseModel):
    """What one workspace has done so far, kept beside the learner's file."""

    experiment: str
    created_at: datetime
    checks: int = 0
    hints_shown: int = 0
    solution_shown: bool = False
    fixed_at: datetime | None = None
    last_check: str | None = Field(None, description="the last check's verdict, in words")


def learn_of(experiment: Experiment) -> Learn:
    if experiment.learn is None:
        run = f"python run_lab.py {experiment.name}"
        if "sqlite" not in experiment.backends:
            run += f" --db {experiment.backends[0]}"
        raise UsageError(
            f"{experiment.name} has no fix-it-yourself task; its report shows the fault and explains the fix: {run}"
        )
    return experiment.learn


def resolve_dir(name: str, given: Path | None) -> Path:
    """``--dir`` or ``./faultlab-work/NAME``; never inside the lab's own packages, where it would be imported."""
    directory = (given if given is not None else DEFAULT_ROOT / name).expanduser().resolve()
    for package in PACKAGES:
        if directory.is_relative_to(variants.PROJECT_ROOT / package):
            raise UsageError(
                f"--dir {directory}: that is inside the lab's {package}/; choose a directory of your own "
                f"(the default is ./{DEFAULT_ROOT}/{name})"
            )
    return directory


def starter_text(experiment: Experiment, learn: Learn) -> str:
    """The fault module, under a docstring that says where it comes from, without its ``# BUG`` comments."""
    assert learn.starter is not None
    _, body = variants.source_of(learn.starter)
    header = (
        f'"""Your copy of the broken code of {experiment.name}: fix it here.\n\n'
        f'TASK.md says what is broken and what "fixed" means. Check your fix on a real server with:\n'
        f"    python run_lab.py check {experiment.name}\n"
        f"The rest of the app is imported from the lab's app/ (read it there); this file must keep defining `app`.\n"
        '"""\n\n'
    )
    return header + _BUG_COMMENT.sub("", body)


def create(experiment: Experiment, directory: Path, *, task: str, force: bool) -> list[Path]:
    """Write the workspace; an existing one is only replaced with ``force``. The files written, in order."""
    learn = learn_of(experiment)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--dir {directory}: that is a file; choose a directory")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise UsageError(
            f"{directory} exists and is not empty: your work may be there. Check it with "
            f"'python run_lab.py check {experiment.name} --dir {directory}', or start over with --force"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        if learn.file is not None:
            written.append(_write(directory / learn.file, starter_text(experiment, learn)))
        else:
            written.append(_write(directory / PREDICTIONS_FILE, predictions_text(experiment.name, learn)))
        written.append(_write(directory / TASK_FILE, task))
        save_progress(directory, Progress(experiment=experiment.name, created_at=datetime.now(UTC)))
        written.append(directory / PROGRESS_FILE)
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"cannot write the workspace {directory}: {reason}; choose another --dir") from None
    return written


def predictions_text(name: str, learn: Learn) -> str:
    lines = [f"# Answer each question before you run the experiment, then: python run_lab.py check {name}", ""]
    for number, prediction in enumerate(learn.predict, 1):
        lines += [f"# {number}. {' '.join(prediction.ask.split())}", f'answer_{number} = ""', ""]
    return "\n".join(lines)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load_progress(directory: Path, name: str) -> Progress:
    path = directory / PROGRESS_FILE
    try:
        progress = Progress.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Progress(experiment=name, created_at=datetime.now(UTC))
    except (OSError, ValidationError, ValueError):
        raise UsageError(f"{path}: not a progress file the lab wrote; delete it to start counting again") from None
    if progress.experiment != name:
        raise UsageError(f"{directory} is the workspace of {progress.experiment}, not {name}; give --dir")
    return progress


def save_progress(directory: Path, progress: Progress) -> None:
    (directory / PROGRESS_FILE).write_text(progress.model_dump_json(indent=2) + "\n", encoding="utf-8")
