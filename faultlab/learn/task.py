"""``TASK.md``: what is broken, what the lab will observe, what "fixed" means, how to check; no solution."""

from __future__ import annotations

from pathlib import Path

from faultlab import variants
from faultlab.model.judge import describe
from faultlab.model.spec import Experiment, Learn
from faultlab.plugins.registry import Registry

__all__ = ["TUTORIAL_MAP", "expectation_words", "task_markdown"]

TUTORIAL_MAP = "docs/tutorial-map.md"


# Shorter words than the registry's, where a learner reads them most.
WORDS = {
    "status": "the HTTP status",
    "ok": "requests answered 2xx",
    "server_errors": "requests answered 5xx",
    "db_rows": "rows in the database (the lab counts them itself)",
    "rows": "todos in the response",
    "error": "the server's exception",
}


def expectation_words(registry: Registry, name: str, expected: str) -> str:
    """``pool_checked_out`` ``= 0`` -> "connections checked out of the pool: 0"."""
    spec = registry.observations.get(name)
    words = WORDS.get(name) or (spec.description if spec else name)
    return f"{words}: {expected.removeprefix('= ')}"


def _backend(experiment: Experiment) -> str:
    """Where ``check`` judges a fix by default: SQLite, unless the experiment runs on PostgreSQL only."""
    return "sqlite" if "sqlite" in experiment.backends else experiment.backends[0]


def _observed(registry: Registry, experiment: Experiment) -> list[str]:
    lines = []
    for number, step in experiment.steps_for("fix"):
        lines.append(f"{number}. **{step.title or step.label()}** (`{step.label()}`)")
        for name, matcher in step.expect.get("fix", {}).items():
            backends = registry.observations[name].backends
            if _backend(experiment) in backends:
                lines.append(f"   - {expectation_words(registry, name, describe(matcher))}")
    return lines


def task_markdown(registry: Registry, experiment: Experiment, learn: Learn, directory: Path) -> str:
    lab = variants.lab_command()
    check = f"{lab} check {experiment.name} --dir {directory}"
    lines = [f"# Fix it yourself: {experiment.name}", "", experiment.title, "", "## What is broken", ""]
    lines.append(learn.task.strip())
    if learn.file is not None:
        lines += [
            "",
            "## Your file",
            "",
            f"`{learn.file}` holds the broken code and nothing else: the rest of the app is imported from the lab's "
            "`app/` (read it there, do not copy it). Change only this file; it must keep defining `app`.",
            "",
            "## What the lab will observe",
            "",
            "`check` serves your file on a real uvicorn server and runs this script against it over HTTP "
            + (
                "(SQLite, in a temp dir; `--db postgresql` for a throwaway PostgreSQL database). A fix shows:"
                if _backend(experiment) == "sqlite"
                else "(a throwaway database on your PostgreSQL server: this experiment needs one; `--db URL` names "
                "it, by default postgresql://postgres@127.0.0.1:5432/postgres). A fix shows:"
            ),
            "",
            *_observed(registry, experiment),
            "",
            '## What "fixed" means',
            "",
            "Every line above holds for your file. The checks look at behaviour (what the lab sees over HTTP, in "
            "the database and inside the server), never at your code's text: deleting a route, returning canned "
            "data or catching every exception fails them.",
        ]
    else:
        lines += [
            "",
            "## There is nothing to code",
            "",
            "Answer the questions in `predictions.toml` first, then run the experiment with `check`: it shows "
            "each of your answers beside what the lab saw.",
        ]
    lines += [
        "",
        "## How to check",
        "",
        f"From the directory above this workspace, `python run_lab.py check {experiment.name}` is enough; these "
        "work from anywhere:",
        "",
        "```",
        check,
        f"{lab} progress --dir {directory.parent}",
        "```",
        "",
        f"Add `--watch` to check again on every save (until fixed or Ctrl+C), `--hint` for one hint at a time "
        f"({len(learn.hints)} in all), `--solution` for the reference solution. Exit code 0 means fixed.",
        "",
        "## Explain it",
        "",
        *[f"- {question.ask}" for question in learn.questions],
        "",
        f"The answers are shown when your check passes. The tutorial's own four questions (what an ORM is, what "
        f"`Depends(get_db)` does, model vs schema, what `yield` and `finally` do) are answered in the lab's "
        f"`{variants.PROJECT_ROOT / TUTORIAL_MAP}`, and `python run_lab.py {experiment.name}` writes a report that "
        "explains the fault.",
        "",
    ]
    return "\n".join(lines)
