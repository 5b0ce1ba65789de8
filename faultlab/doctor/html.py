"""The doctor's ``report.html``: findings first, then each operation with its checked-out counts as bars.

Built like the experiments' report (``faultlab.reports.html``): one template, inline CSS and SVG, no script, and
everything from the user's app (operation names, evidence, error text) escaped by Jinja2's autoescape.
"""

from __future__ import annotations

from dataclasses import dataclass

from faultlab.doctor.report import Checked, Report, tally
from faultlab.doctor.where import excerpt
from faultlab.reports.html import environment

__all__ = ["render_doctor_html", "setting"]

BAR_STEP, BAR_TOP = 11, 30


@dataclass(frozen=True)
class _Bar:
    x: int
    y: float
    height: float
    up: bool  # higher than after the first request: what a leak looks like


def _bars(series: list[int]) -> list[_Bar]:
    if not series:
        return []
    top = max(max(series), 1)
    bars = []
    for i, value in enumerate(series):
        height = max(1.0, BAR_TOP * value / top) if value else 1.0
        bars.append(_Bar(x=i * BAR_STEP + 1, y=BAR_TOP + 2 - height, height=height, up=value > series[0]))
    return bars


def setting(report: Report) -> str:
    """How the app was served, in one sentence (the Markdown report says the same)."""
    database = "a throwaway PostgreSQL database" if report.database == "postgresql" else "a SQLite file in a temp dir"
    return f"Served on a real uvicorn with {database}; every operation of its OpenAPI document exercised."


def render_doctor_html(report: Report) -> str:
    def row(checked: Checked) -> dict[str, object]:
        bars = _bars(checked.checked_out)
        found = sorted({f.kind for f in report.findings if checked.operation in f.operations})
        width = len(bars) * BAR_STEP + 2
        return {"checked": checked, "statuses": tally(checked.statuses), "bars": bars, "width": width, "found": found}

    # Each finding's line with a few around it, by the finding's index: its link (``#source-N``) goes there.
    sources = {i: excerpt(f.location) for i, f in enumerate(report.findings) if f.location is not None}
    template = environment().get_template("doctor.html.j2")
    rows = [row(c) for c in report.checked]
    return template.render(report=report, rows=rows, setting=setting(report), sources=sources)
