"""``check``: serve the learner's file in the experiment's fix run, on a real server, and judge it with the
experiment's own expectations for the fix. The fault run is skipped: it does not depend on the learner.

The file is copied into the run's temp dir and imported from there (so nothing, not even ``__pycache__``,
is written into the workspace), first by a preflight process that turns a syntax or import error into the
learner's file, line and message, then by the server.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from faultlab import variants
from faultlab.backends.base import Backend, PostgresBackend, SqliteBackend
from faultlab.errors import UsageError
from faultlab.interrupts import deferred
from faultlab.learn import preflight
from faultlab.learn.task import expectation_words
from faultlab.model.catalogue import Entry
from faultlab.model.results import Baseline, Check, RunResult, StepResult
from faultlab.model.validate import baseline
from faultlab.plugins.registry import Registry
from faultlab.reports.summary import evidence_line
from faultlab.running.orchestrate import QuietListener, make_run_dir
from faultlab.running.runner import Listener, execute_run

__all__ = ["Outcome", "check_file"]

PREFLIGHT_TIMEOUT_S = 60.0


@dataclass
class Outcome:
    fixed: bool
    headline: str  # one line: fixed, or what failed
    details: list[str] = field(default_factory=list)


def check_file(
    registry: Registry, entry: Entry, path: Path, listener: Listener | None = None, postgres_url: str | None = None
) -> Outcome:
    """Judge ``path`` as the fix run, with ``registry``'s witnesses: on SQLite, or on a throwaway database of the
    PostgreSQL server at ``postgres_url`` (an experiment that runs on PostgreSQL only needs one)."""
    experiment = entry.experiment
    backend_name = "sqlite" if postgres_url is None else "postgresql"
    if backend_name not in experiment.backends:
        raise UsageError(
            f"{experiment.name} runs on {', '.join(experiment.backends)} only: "
            f"python run_lab.py check {experiment.name} --db {experiment.backends[0]}"
        )
    try:
        source = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"no {path.name} in {path.parent}; make the workspace first: python run_lab.py fix {experiment.name}"
        ) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    workdir = make_run_dir(f"check-{experiment.name}")
    try:
        code_dir = workdir / "learner"
        code_dir.mkdir()
        copy = code_dir / f"{preflight.MODULE}.py"
        copy.write_bytes(source)
        problem = _preflight(copy, code_dir)
        if problem is not None:
            return _code_problem(problem, source, str(copy), path)
        variant = variants.Variant(f"your {path.name}", f"{preflight.MODULE}:app", app_dir=code_dir)
        backend: Backend = (
            SqliteBackend(workdir / "fix")
            if postgres_url is None
            else PostgresBackend(postgres_url, label=f"check-{experiment.name}")
        )
        result = execute_run(
            registry, experiment, "fix", workdir / "fix", listener or QuietListener(), backend, variant=variant
        )
        if result.status == "interrupted":
            raise KeyboardInterrupt  # Ctrl+C ends a check, and a watch, as it ends a run
        fault_checks = baseline(registry, experiment, "fault", result, backend.name)
        return _judge(registry, result, fault_checks, str(copy), str(path))
    finally:
        with deferred():
            shutil.rmtree(workdir, ignore_errors=True)


def _code_problem(problem: dict[str, object], source: bytes, copy: str, path: Path) -> Outcome:
    """The learner's file, line and message, and the line itself: never the lab's traceback."""
    line = problem.get("line")
    message = str(problem.get("message", "")).replace(copy, str(path))
    if not isinstance(line, int):
        return Outcome(False, f"{path}: {message}", ["change the file and check again"])
    lines = source.decode("utf-8", "replace").splitlines()
    shown = lines[line - 1].rstrip() if 0 < line <= len(lines) else ""
    return Outcome(False, f"{path}:{line}: {message}", [f"{line:>4} | {shown}", "fix that line and check again"])


def _preflight(copy: Path, code_dir: Path) -> dict[str, object] | None:
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(variants.PROJECT_ROOT), str(code_dir)]),
        # Importing the app connects nowhere; should the learner's code connect, it finds a throwaway file.
        "DATABASE_URL": f"sqlite:///{code_dir / 'preflight.db'}",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "faultlab.learn.preflight", str(copy)],
            cwd=code_dir, env=env, capture_output=True, text=True, timeout=PREFLIGHT_TIMEOUT_S,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        waited = f"importing it took more than {PREFLIGHT_TIMEOUT_S:.0f} s; does it wait for something at import?"
        return {"line": None, "message": waited}
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"line": None, "message": f"importing it ended the process ({tail})"}
    return None if report.get("ok") else report


_TEXT_BOUND = re.compile(r"""(does not contain|contains) ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
EXCERPT = 80


def _excerpt(observed: str, expected: str) -> str:
    """The parts of a long text the failed bounds are about: where a forbidden piece sits, which one is missing."""
    parts = []
    for kind, quoted in _TEXT_BOUND.findall(expected):
        needle = ast.literal_eval(quoted)
        at = observed.find(needle)
        if kind == "does not contain" and at >= 0:
            start = max(0, at - 20)
            piece = observed[start : at + len(needle) + 20]
            parts.append(("…" if start else "") + piece + ("…" if start + len(piece) < len(observed) else ""))
        elif kind == "contains" and at < 0:
            parts.append(f"no {needle}")
    return " and ".join(parts) or observed[: EXCERPT - 1] + "…"


def plain(registry: Registry, step: StepResult, check: Check) -> str:
    """A failed check in words, the evidence next to what a fix shows."""
    observed = check.observed
    if isinstance(observed, str) and len(observed) > EXCERPT:
        observed = _excerpt(observed, check.expected)
    shown = "nothing" if observed is None else observed
    words, _, expected = expectation_words(registry, check.observation, check.expected).rpartition(": ")
    return f"step {step.number} ({step.title or step.label}): {words}: yours {shown}, a fix gives {expected}"


_EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Warning)): (.*)$")


def _server_failure(error: str, copy: str, path: str) -> Outcome:
    """A server that died: the learner's line and the exception from its log, not the log's traceback."""
    lines = error.splitlines()
    frames = re.findall(rf'File "{re.escape(copy)}", line (\d+)', error)
    raised = [match.group(0).strip() for line in lines if (match := _EXCEPTION_LINE.match(line))]
    if not raised:
        return Outcome(False, f"your app did not get through the run: {lines[0].replace(copy, path)}", lines[1:])
    where = f"{path}:{frames[-1]}" if frames else path
    first = lines[0].split(";")[0].replace(f"({preflight.MODULE}:app)", f"serving {Path(path).name}")
    return Outcome(False, f"{where}: {raised[-1]}", [f"({first})", "fix it and check again"])


def _judge(registry: Registry, result: RunResult, fault_checks: Baseline, copy: str, path: str) -> Outcome:
    """The fix run's checks must hold, and the fault run's must fail somewhere on it: a run that passes both
    could not tell a fix from the bug (the baseline, ``faultlab.model.validate``)."""
    if result.status != "completed":
        return _server_failure(result.error or result.status, copy, path)
    for step in result.steps:
        for check in step.checks:
            if check.outcome == "fail":
                seen = f"what the lab saw: {evidence_line(registry, step.observation)}"
                return Outcome(False, plain(registry, step, check), [seen])
    if not result.judged:
        return Outcome(False, "not judged: every check needs a witness this machine lacks (see the n/a lines)")
    if fault_checks.applicable and not fault_checks.tells_apart:
        return Outcome(
            False,
            "proves nothing: every expectation of the fault run holds on your run too, so these checks cannot tell "
            "your fix from the bug",
            [f"held on both: {fault_checks.held_text()}"],
        )
    return Outcome(True, f"fixed: every expectation of the fix run holds for {Path(path).name}")
