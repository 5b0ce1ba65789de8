"""The doctor's report in Markdown (``report.md``), as ``html`` renders the same report as a page: the verdict and
the setting, each finding with its evidence and where it came from, every operation's counts, and what did not
run and why."""

from __future__ import annotations

from faultlab.doctor.html import setting
from faultlab.doctor.report import Report, tally
from faultlab.doctor.verdict import NotRun
from faultlab.reports.markdown import code_span, literal, prose

__all__ = ["render_doctor_markdown"]


def _not_run(entry: NotRun) -> str:
    """A check that did not run, why, and what to do, in one Markdown item."""
    todo = f" What you can do: {prose(entry.remedy)}." if entry.remedy else ""
    return f"- **{prose(entry.check)}**: {literal(entry.reason)}.{todo}"


def render_doctor_markdown(report: Report) -> str:
    """The report for a terminal or a Git host: the verdict, the findings, every operation's counts, and what did
    not run and why."""
    lines = [f"# faultlab doctor: {code_span(report.target)}", ""]
    summary = report.summary
    os_count = f" and the operating system's count of {report.os_witness}" if report.os_witness else ""
    lines += [
        f"**{summary[0].upper() + summary[1:]}.** {setting(report)} Each operation was sent a few times with the "
        f"garbage collector off, the pool's checked-out count (where the engine was found){os_count} read before "
        "and after each request.",
        "",
        f"OpenAPI document: {prose(report.openapi)}."
        + (f" Pool budget sent at once: {code_span(report.pool_route)}." if report.pool_route else ""),
        "",
    ]
    lines += [*_served_lines(report), ""]
    for finding in report.findings:
        operations = ", ".join(code_span(operation) for operation in finding.operations)
        where = ""
        if finding.location is not None:
            role = f" ({prose(finding.location.role)})" if finding.location.role else ""
            where = f" At {code_span(str(finding.location))}{role}."
        elif finding.unlocated:
            where = f" Line: n/a ({prose(finding.unlocated)})."
        lines.append(f"- **{prose(finding.kind)}** on {operations}: {literal(finding.evidence)}.{where}")
    if report.disagreements:
        lines += ["", "Where the witnesses disagree:"]
        lines += [f"- {code_span(d.operation)}: {literal(d.evidence)}" for d in report.disagreements]
    os_column = f"{report.os_witness} (OS), before and after each" if report.os_witness else "seen by the OS"
    lines += ["", f"| operation | statuses | checked out, before and after each | {os_column} |", "|---|---|---|---|"]
    for checked in report.checked:
        series = "→".join(map(str, checked.checked_out)) or "n/a"
        seen = "→".join(map(str, checked.os_open)) or "n/a"
        statuses = tally(checked.statuses) + (" (not checked)" if checked.not_checked else "")
        lines.append(f"| {code_span(checked.operation, in_table=True)} | {statuses} | {series} | {seen} |")
    if report.not_checked:
        lines += ["", 'Did not run (without them the verdict cannot be "nothing found"):']
        lines += [_not_run(entry) for entry in report.not_checked]
    if report.not_applicable:
        lines += ["", "Not applicable to this run:", *[_not_run(entry) for entry in report.not_applicable]]
    return "\n".join(lines) + "\n"


def _served_lines(report: Report) -> list[str]:
    """Which app was served, by which interpreter, on which database, with what: names only, never a value."""
    where = (
        "its configured database, as asked with `--use-configured-db`" if report.configured_db else "the throwaway one"
    )
    engine = f"{code_span(report.engine_url)} ({where})" if report.engine_url else "no SQLAlchemy engine found"
    lines = [
        f"- App loaded from {code_span(report.app_file) if report.app_file else 'an unknown file'}, "
        f"served by {code_span(report.python)}",
        f"- Its engine's database: {engine}",
    ]
    if report.settings:
        lines.append(f"- Settings given (values not shown): {', '.join(code_span(n) for n in report.settings)}")
    lines += [f"- Credentials: {prose(given)}" for given in report.credentials]
    lines += [f"- Set-up, before the app started: {code_span(command)}" for command in report.setup]
    return lines
