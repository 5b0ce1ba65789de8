"""Write an experiment's report: ``report.md`` for a learner, ``journal.json`` for machines, server logs."""

from __future__ import annotations

import errno
import shutil
import tempfile
from html import escape
from pathlib import Path

from faultlab import variants
from faultlab.model.results import ExperimentResult, RunResult, StepResult
from faultlab.model.spec import RUNS, Experiment, RunName
from faultlab.plugins.registry import Registry
from faultlab.reports.html import render_html
from faultlab.reports.markdown import code_span, fence, prose
from faultlab.reports.summary import check_line, evidence_parts

__all__ = ["place_problem", "prepare_out_dir", "report_place", "write_report"]


def prepare_out_dir(out_dir: Path) -> Path:
    """Create (or accept) the report directory; raise OSError with the reason if it cannot be written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".faultlab-write-test-"):
        pass  # a unique name: two labs checking the same directory do not trip over each other
    return out_dir


def report_place(out_dir: Path, name: str, backend: str) -> Path:
    return out_dir / (name if backend == "sqlite" else f"{name}-{backend}")


def place_problem(target: Path) -> str | None:
    """Why a report cannot be put at ``target`` without destroying something that is not a report."""
    if target.is_symlink():
        return f"{target} is a symbolic link; a report would replace it"
    if target.exists() and not target.is_dir():
        return f"{target} is a file; a report would replace it"
    return None


def write_report(
    registry: Registry, result: ExperimentResult, experiment: Experiment, out_dir: Path, workdir: Path
) -> Path:
    """Write ``out_dir/NAME/`` whole, then swap it in: two labs running at once never mix their files."""
    target = report_place(out_dir, experiment.name, result.backend)
    if problem := place_problem(target):
        raise NotADirectoryError(errno.ENOTDIR, problem)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=out_dir))
    try:
        for run in RUNS:
            log = workdir / run / "server.log"
            if log.exists():
                shutil.copyfile(log, staging / f"{run}-server.log")
        (staging / "journal.json").write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
        (staging / "report.md").write_text(render_markdown(registry, result, experiment), encoding="utf-8")
        (staging / "report.html").write_text(render_html(registry, result, experiment, staging), encoding="utf-8")
        staging.chmod(0o755)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _swap_in(staging: Path, target: Path, attempts: int = 20) -> None:
    """Replace ``target`` by ``staging``; the last writer wins, and each version is complete."""
    for _ in range(attempts):
        try:
            staging.rename(target)
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        try:
            target.rename(retired / "report")
        except FileNotFoundError:
            pass  # another lab swapped it away first; try again
        finally:
            shutil.rmtree(retired, ignore_errors=True)
    raise OSError(f"could not replace {target}: another process keeps writing it")


def render_markdown(registry: Registry, result: ExperimentResult, experiment: Experiment) -> str:
    lines = [
        f"# {experiment.name}: {_md(experiment.title)}",
        "",
        _verdict(result),
        "",
        _context(result, experiment),
        "",
    ]
    lines += _report_problem(result)
    lines += _code(experiment)
    lines += ["## What happened, step by step", ""]
    lines += _step_table(registry, result, experiment)
    lines += _sql(result)
    lines += _errors(result)
    lines += ["## Why it happens", "", prose(experiment.explain.why.strip()), ""]
    lines += ["## How the fix works", "", prose(experiment.explain.fix.strip()), ""]
    lines += ["## What to remember", "", prose(experiment.explain.remember.strip()), ""]
    lines += _checks(result)
    lines += _baselines(result)
    lines += [
        "## Files",
        "",
        "`journal.json` has every observation and check of both runs (with each step's timeline and the "
        "server's exceptions, chained), and the PostgreSQL database and role each run used; `fault-server.log` "
        "and `fix-server.log` are the servers' own output (tracebacks included), each to its shutdown.",
        "",
    ]
    return "\n".join(lines)


def _report_problem(result: ExperimentResult) -> list[str]:
    return (
        [f"**{_md(result.report_problem)}**; this copy was kept in a temp dir instead.", ""]
        if result.report_problem
        else []
    )


def _count(run: RunResult | None) -> str:
    if run is None:
        return "did not run"
    passed = sum(check.passed for check in run.checks)
    applicable = sum(check.applies for check in run.checks)
    not_applicable = len(run.checks) - applicable
    if run.status == "interrupted" and not run.checks:
        return "interrupted before its first check"
    text = f"{passed}/{applicable} checks" + (f" ({not_applicable} n/a here)" if not_applicable else "")
    if not run.judged:
        text += ", not judged: no check could be made here"
    return text + ("" if run.status == "completed" else f", {run.status}")


def _verdict(result: ExperimentResult) -> str:
    fault, fix = result.runs.get("fault"), result.runs.get("fix")
    icon = "✅" if result.verdict.exit_code == 0 else "❌"
    return (
        f"**Verdict: {icon} {result.verdict}.** Fault run: {_count(fault)}"
        f"{' (the fault reproduced)' if fault and fault.held else ''}. "
        f"Fix run: {_count(fix)}{' (the fix held)' if fix and fix.held else ''}."
    )


def _context(result: ExperimentResult, experiment: Experiment) -> str:
    versions = " · ".join(f"{name} {v}" for name, v in result.versions.items())
    runs = []
    for run in RUNS:
        spec = getattr(experiment, run)
        env = ", ".join(code_span(f"{k}={v}") for k, v in spec.env.items())
        runs.append(f"{run} run: variant `{spec.variant}`" + (f" with {env}" if env else ""))
    when = result.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    seconds = (result.ended_at - result.started_at).total_seconds() if result.ended_at else 0.0
    return f"Run {when} ({seconds:.1f} s) on {result.backend}, with {versions}.  \n" + "; ".join(runs) + "."


def _code(experiment: Experiment) -> list[str]:
    refs = [(run, getattr(experiment.code, run)) for run in RUNS]
    if not any(ref for _, ref in refs):
        return []
    cells = []
    for run, ref in refs:
        if ref is None:
            cells.append((f"{run}", "(no code change: see the steps)"))
            continue
        where, source = variants.source_of(ref)
        cells.append((f"{run}: <code>{escape(where)}</code>", "\n\n" + "\n".join(fence(source, "python")) + "\n\n"))
    header = "".join(f"<th>{title}</th>" for title, _ in cells)
    body = "".join(f"<td>{content}</td>" for _, content in cells)
    return ["## The bug and the fix", "", f'<table><tr>{header}</tr><tr valign="top">{body}</tr></table>', ""]


def _cell(registry: Registry, step: StepResult | None) -> str:
    lines = [*evidence_parts(registry, step.observation), *map(check_line, step.checks)] if step else []
    return "<br>".join(_md(line) for line in lines)


def _md(text: str) -> str:
    """Text from a run or an experiment file, safe inside a Markdown table cell (no HTML, no new cells)."""
    return escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _step_table(registry: Registry, result: ExperimentResult, experiment: Experiment) -> list[str]:
    by_run = {run: {s.number: s for s in r.steps} for run, r in result.runs.items()}
    heads = [f"{run} run (`{getattr(experiment, run).variant}`)" for run in RUNS]
    rows = [f"| # | step | {heads[0]} | {heads[1]} |", "|---|---|---|---|"]
    for number, step in enumerate(experiment.steps, 1):
        command = code_span(step.label(), in_table=True)
        label = f"**{_md(step.title)}**<br>{command}" if step.title else command
        if step.note:
            label += f"<br>_{_md(step.note)}_"
        cells = [
            "—" if step.only not in (None, run) else _cell_or_gap(registry, result, by_run, run, number) for run in RUNS
        ]
        rows.append(f"| {number} | {label} | {cells[0]} | {cells[1]} |")
    return [*rows, ""]


def _cell_or_gap(
    registry: Registry,
    result: ExperimentResult,
    by_run: dict[RunName, dict[int, StepResult]],
    run: RunName,
    number: int,
) -> str:
    if run not in result.runs:
        return "(did not run)"
    step = by_run[run].get(number)
    if step:
        return _cell(registry, step)
    return "(not reached: the run was interrupted)" if result.runs[run].status == "interrupted" else "(not reached)"


def _sql(result: ExperimentResult) -> list[str]:
    """The statements each step sent (normalized: no values), folded so that the table stays readable."""
    lines: list[str] = []
    for run, r in result.runs.items():
        for step in r.steps:
            sql, count = step.observation.get("sql"), step.observation.get("sql_statements")
            if sql and count:
                plural = "" if count == 1 else "s"
                summary = f"{run} run, step {step.number} ({step.title or step.label}): {count} statement{plural}"
                lines += [f"<details><summary>{_md(summary)}</summary>", "", *fence(sql, "sql"), "", "</details>"]
    if not lines:
        return []
    return [
        "## The SQL each step sent",
        "",
        "Counted inside the server (engine events); values are never kept.",
        "",
        *lines,
        "",
    ]


def _errors(result: ExperimentResult) -> list[str]:
    problems = [(run, r) for run, r in result.runs.items() if r.error]
    lines: list[str] = []
    for run, r in problems:
        lines += [f"**The {run} run ended early ({r.status}):**", "", *fence(r.error or ""), ""]
    return lines


def _checks(result: ExperimentResult) -> list[str]:
    lines = ["## Every check", "", "| run | step | observation | expected | observed | |", "|---|---|---|---|---|---|"]
    for run, r in result.runs.items():
        for step in r.steps:
            for check in step.checks:
                observed = _md(repr(check.observed))
                if len(observed) > 80:
                    observed = observed[:79] + "…"
                mark = {"pass": "✅ pass", "fail": "❌ FAIL", "n/a": f"➖ n/a: {_md(check.reason or '')}"}[
                    check.outcome
                ]
                lines.append(
                    f"| {run} | {step.number} | `{check.observation}` | {_md(check.expected)} | {observed} | {mark} |"
                )
    return [*lines, ""]


def _baselines(result: ExperimentResult) -> list[str]:
    """Why "as expected" means something: each run's expectations, judged on the other run, fail somewhere."""
    if not result.baselines:
        return []
    lines = [
        "## Does it tell the fault from the fix?",
        "",
        "Each run's expectations are judged against the other run's observations: they must fail somewhere, or "
        "the experiment would pass whether the bug is there or not.",
        "",
    ]
    for baseline in result.baselines:
        mark = "✅" if baseline.tells_apart else "❌"
        held = "" if baseline.tells_apart else f" Held on both: {_md(baseline.held_text())}."
        lines.append(f"- {mark} {_md(baseline.line())}.{held}")
    return [*lines, ""]
