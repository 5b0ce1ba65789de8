"""The HTML report of an experiment (``report.html``) and the index of a lab run (``index.html``).

Self-contained: inline CSS and SVG, no script, no network. Jinja2 escapes everything it places (autoescape);
the explanation's Markdown is rendered with raw HTML switched off, so a file cannot put markup on the page.
"""

from __future__ import annotations

import ast
import difflib
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from faultlab import variants
from faultlab.model.results import ExperimentResult, StepResult
from faultlab.model.spec import RUNS, Experiment
from faultlab.plugins.registry import Registry
from faultlab.reports.charts import COLOURS, charts
from faultlab.reports.summary import check_line, evidence_parts

__all__ = ["IndexEntry", "environment", "render_html", "write_index"]

MARKS = {"pass": "PASS", "fail": "FAIL", "n/a": "N/A"}


@dataclass(frozen=True)
class IndexEntry:
    name: str
    title: str
    backend: str
    verdict: str
    ok: bool
    seconds: float
    link: str  # relative to the index: <dir>/report.html


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("faultlab.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = _markdown
    env.filters["markdown_inline"] = _markdown_inline
    return env


@cache
def _markdown_renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False})  # raw HTML in a file is shown as text, never as markup


def _markdown(text: str) -> Markup:
    return Markup(_markdown_renderer().render(text.strip()))  # escaped by its renderer


def _markdown_inline(text: str) -> Markup:
    return Markup(_markdown_renderer().renderInline(text.strip()))  # escaped by its renderer


def _python(source: str) -> Markup:
    return Markup(highlight(source, PythonLexer(), HtmlFormatter(nowrap=True)))  # escaped by its renderer


def _code(experiment: Experiment) -> dict[str, Any] | None:
    refs = {run: getattr(experiment.code, run) for run in RUNS}
    if not any(refs.values()):
        return None
    shown: dict[str, Any] = {}
    sources: dict[str, tuple[str, str]] = {}
    for run, ref in refs.items():
        if ref is None:
            shown[run] = None
            continue
        try:
            where, source = variants.source_of(ref)
        except (LookupError, SyntaxError, OSError) as exc:
            shown[run] = {"where": ref, "html": None, "problem": str(exc)}
            continue
        sources[run] = (where, source)
        shown[run] = {"where": where, "html": _python(source), "problem": None}
    diff = None
    if len(sources) == 2:
        (fix_where, fix), (fault_where, fault) = sources["fix"], sources["fault"]
        if ":" in str(refs["fix"]) and ":" not in str(refs["fault"]):  # a function against a whole module
            name, fault = _closest_definition(fault, str(refs["fix"]).partition(":")[2], fix)
            fault_where += f":{name}" if name else ""
        lines = difflib.unified_diff(
            fix.splitlines(keepends=True), fault.splitlines(keepends=True), fix_where, fault_where, n=2
        )
        text = "".join(lines)
        diff = Markup(highlight(text, DiffLexer(), HtmlFormatter(nowrap=True))) if text else None
    return {"runs": shown, "diff": diff}


def _closest_definition(module_source: str, fix_name: str, like: str) -> tuple[str, str]:
    """The module's function or class that stands in for the fix (named after it, else the most alike): a
    diff of two functions shows the bug, a function against a whole module is mostly noise. The whole
    module when none does. (Its name, or "", and its source.)"""
    try:
        tree = ast.parse(module_source)
    except SyntaxError:
        return "", module_source
    lines = module_source.splitlines(keepends=True)
    definitions = {
        n.name: "".join(lines[min([n.lineno, *(d.lineno for d in n.decorator_list)]) - 1 : n.end_lineno])
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    for name, source in definitions.items():
        if fix_name in name:
            return name, source
    scored = [(difflib.SequenceMatcher(None, source, like).ratio(), name) for name, source in definitions.items()]
    ratio, best = max(scored, default=(0.0, ""))
    return (best, definitions[best]) if ratio >= 0.4 else ("", module_source)


def _step_rows(registry: Registry, result: ExperimentResult, experiment: Experiment) -> list[dict[str, Any]]:
    by_run = {run: {s.number: s for s in r.steps} for run, r in result.runs.items()}
    rows = []
    for number, step in enumerate(experiment.steps, 1):
        cells: dict[str, dict[str, Any]] = {}
        for run in RUNS:
            done: StepResult | None = by_run.get(run, {}).get(number)
            if step.only not in (None, run):
                cells[run] = {"skipped": "not in this run"}
            elif done is None:
                cells[run] = {"skipped": "not reached" if run in result.runs else "did not run"}
            else:
                cells[run] = {
                    "evidence": evidence_parts(registry, done.observation),
                    "checks": [
                        (MARKS[c.outcome], c.outcome.replace("/", ""), check_line(c, icon=False)) for c in done.checks
                    ],
                    "errors": list(dict.fromkeys(str(e) for e in done.observation.exceptions))[:5],
                }
        rows.append({"number": number, "title": step.title, "label": step.label(), "note": step.note, **cells})
    return rows


def _log_marks(result: ExperimentResult, report_dir: Path) -> dict[str, list[tuple[str, int]]]:
    """Per run: where its steps begin in its server log (from the log's size as each step began); steps that
    wrote nothing share the line of the next one that did, so they are named together ("steps 1-5")."""
    marks: dict[str, list[tuple[str, int]]] = {}
    for run, run_result in result.runs.items():
        try:
            data = (report_dir / f"{run}-server.log").read_bytes()
        except OSError:
            continue
        by_line: dict[int, list[int]] = {}
        for step in run_result.steps:
            if step.log_offset is not None:
                by_line.setdefault(data.count(b"\n", 0, step.log_offset) + 1, []).append(step.number)
        marks[run] = [
            (f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}-{steps[-1]}", line)
            for line, steps in by_line.items()
        ]
    return marks


def render_html(registry: Registry, result: ExperimentResult, experiment: Experiment, report_dir: Path) -> str:
    fault, fix = result.runs.get("fault"), result.runs.get("fix")
    takeaway = next(iter(experiment.explain.remember.strip().splitlines()), "").lstrip("-* ").strip()
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            result=result,
            experiment=experiment,
            ok=result.verdict.exit_code == 0,
            takeaway=takeaway,
            fault=fault,
            fix=fix,
            specs={run: getattr(experiment, run) for run in RUNS},
            code=_code(experiment),
            charts=charts(registry, result),
            colours=COLOURS,
            rows=_step_rows(registry, result, experiment),
            marks=MARKS,
            runs=RUNS,
            css=HtmlFormatter().get_style_defs(".hl"),  # type: ignore[no-untyped-call]
            log_marks=_log_marks(result, report_dir),
            sql=_sql_steps(result),
        )
    )


def _sql_steps(result: ExperimentResult) -> list[dict[str, Any]]:
    """The statements each step sent, as report.md folds them (engine events; values are never kept)."""
    return [
        {"run": run, "step": step, "count": step.observation["sql_statements"], "sql": step.observation["sql"]}
        for run, r in result.runs.items()
        for step in r.steps
        if step.observation.get("sql") and step.observation.get("sql_statements")
    ]


def write_index(out_dir: Path, results: list[ExperimentResult]) -> Path:
    """``out_dir/index.html``: this lab run's experiments, each linked to its report (written aside, renamed)."""
    entries = []
    for result in results:
        if not result.report_dir:
            continue
        report = Path(result.report_dir).resolve() / "report.html"
        try:
            link = report.relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            link = report.as_uri()  # kept in a temp dir because --out could not take it
        seconds = (result.ended_at - result.started_at).total_seconds() if result.ended_at else 0.0
        ok = result.verdict.exit_code == 0
        entries.append(IndexEntry(result.name, result.title, result.backend, str(result.verdict), ok, seconds, link))
    title = "faultlab: this run's experiments"
    html = environment().get_template("index.html.j2").render(entries=entries, title=title)
    target = out_dir / "index.html"
    descriptor, staging = tempfile.mkstemp(prefix=".index.html-", dir=out_dir)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(html)
    os.chmod(staging, 0o644)
    os.replace(staging, target)
    return target
