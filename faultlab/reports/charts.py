"""Charts of what the witnesses saw over time, fault run and fix run on the same axes, as inline SVG.

Only numbers and fixed words go into the SVG's attributes; every label from a run or a file is escaped by
the template that places it. No script, no external asset: the page renders offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faultlab.model.results import ExperimentResult, RunResult
from faultlab.model.spec import RUNS, RunName
from faultlab.plugins.registry import Registry

__all__ = ["Chart", "charts"]

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 36
COLOURS: dict[RunName, str] = {"fault": "#c62828", "fix": "#2e7d32"}
# Each witness names its charts (``Witness.charts``); latency is the request steps' own.
LATENCY = {"latency_max_ms": "slowest answer of each request step (ms)"}


@dataclass
class Line:
    run: RunName
    colour: str
    points: str  # "x,y x,y ..." in SVG coordinates
    dots: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Chart:
    name: str
    title: str
    lines: list[Line]
    y_max: float
    x_max: float
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    steps: list[tuple[float, int]]  # where each step of the fault run began (x), and its number
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def runs(self) -> list[RunName]:
        return [line.run for line in self.lines]


def _step_starts(run: RunResult) -> list[tuple[int, float]]:
    """Each step's start on the run's own clock: the steps one after another, each as long as it took."""
    starts, clock = [], 0.0
    for step in run.steps:
        starts.append((step.number, clock))
        last_sample = step.observation.timeline[-1].t if step.observation.timeline else 0.0
        clock += max(step.duration_s, last_sample, 0.05)
    return starts


def _points(run: RunResult, name: str) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    starts = dict(_step_starts(run))
    for step in run.steps:
        began = starts[step.number]
        if name == "latency_max_ms":
            if (value := step.observation.values.get(name)) is not None:
                points.append((began + step.duration_s, float(value)))
            continue
        sampled = [(began + s.t, float(s.values[name])) for s in step.observation.timeline if name in s.values]
        if not sampled and isinstance(value := step.observation.values.get(name), int | float):
            sampled = [(began + step.duration_s, float(value))]  # observed once, after the step
        points += sampled
    return points


def _ticks(top: float, count: int = 4) -> list[float]:
    if top <= 0:
        return [0.0]
    raw = top / count
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 0.1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(top / step) + 2) if i * step <= top * 1.0001 or i == 1]


def _chart(result: ExperimentResult, name: str, titles: dict[str, str]) -> Chart | None:
    data = {run: _points(result.runs[run], name) for run in RUNS if run in result.runs}
    if not any(len(points) > 1 or (name == "latency_max_ms" and points) for points in data.values()):
        return None
    x_max = max((x for points in data.values() for x, _ in points), default=1.0) or 1.0
    y_top = max((y for points in data.values() for _, y in points), default=1.0)
    y_max = max(1.0, y_top * 1.1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return round(LEFT + x / x_max * plot_w, 1)

    def sy(y: float) -> float:
        return round(TOP + plot_h - y / y_max * plot_h, 1)

    lines = []
    for run, points in data.items():
        # A step line for counts (a count holds until the next sample), straight segments for latency.
        drawn: list[tuple[float, float]] = []
        for x, y in points:
            if drawn and name != "latency_max_ms":
                drawn.append((sx(x), drawn[-1][1]))
            drawn.append((sx(x), sy(y)))
        dots = [(sx(x), sy(y)) for x, y in points] if name == "latency_max_ms" else []
        lines.append(Line(run, COLOURS[run], " ".join(f"{x},{y}" for x, y in drawn), dots))
    fault = result.runs.get("fault")
    steps = [(sx(start), number) for number, start in _step_starts(fault)] if fault else []
    return Chart(
        name=name,
        title=titles[name],
        lines=lines,
        y_max=y_max,
        x_max=x_max,
        y_ticks=[(sy(v), f"{v:g}") for v in _ticks(y_max)],
        x_ticks=[(sx(v), f"{v:g} s") for v in _ticks(x_max, 6)],
        steps=steps,
    )


def charts(registry: Registry, result: ExperimentResult) -> list[Chart]:
    """Every witness of ``registry`` with something to show over time, in the plugins' order."""
    titles = registry.charted() | LATENCY
    return [chart for name in titles if (chart := _chart(result, name, titles)) is not None]
