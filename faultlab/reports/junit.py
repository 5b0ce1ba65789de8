"""``--junit FILE``: one test case per experiment and backend, for a teacher's or a user's CI.

ElementTree escapes every text and attribute; the file is written aside and renamed, so a CI never reads
half of it.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from faultlab.model.results import ExperimentResult, Verdict

__all__ = ["write_junit"]


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """XML 1.0 cannot hold most control characters (ANSI colours in a server's log tail, say)."""
    return _NOT_XML.sub("\ufffd", text)


def _seconds(result: ExperimentResult) -> float:
    return (result.ended_at - result.started_at).total_seconds() if result.ended_at else 0.0


def _failures(result: ExperimentResult) -> list[str]:
    lines = [f"{run} run: {r.error}" for run, r in result.runs.items() if r.error]
    lines += [
        f"{run} run, step {step.number}: {check.observation} expected {check.expected}, observed {check.observed!r}"
        for run, r in result.runs.items()
        for step in r.steps
        for check in step.checks
        if check.outcome == "fail"
    ]
    lines += [
        f"{baseline.line()}: held on both: {baseline.held_text()}"
        for baseline in result.baselines
        if not baseline.tells_apart
    ]
    return lines


def _case(result: ExperimentResult) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=f"faultlab.{result.backend}",
        name=result.name,
        time=f"{_seconds(result):.3f}",
        file=result.experiment_file,
    )
    details = "\n".join(_failures(result))
    if result.report_dir:
        details += f"\nreport: {Path(result.report_dir) / 'report.html'}"
    if result.verdict is Verdict.AS_EXPECTED:
        pass
    elif result.verdict is Verdict.NOT_JUDGED:
        ET.SubElement(case, "skipped", message="not judged: no check could be made on this machine")
    elif result.verdict in (Verdict.ERROR, Verdict.INTERRUPTED):
        ET.SubElement(case, "error", message=str(result.verdict)).text = _xml_text(details)
    else:
        ET.SubElement(case, "failure", message=str(result.verdict)).text = _xml_text(details)
    return case


def write_junit(path: Path, results: list[ExperimentResult], skipped: dict[str, str]) -> None:
    """``skipped``: experiment -> why it did not run here (another backend)."""
    suite = ET.Element("testsuite", name="faultlab")
    cases = [_case(result) for result in results]
    for name, reason in skipped.items():
        case = ET.Element("testcase", classname="faultlab", name=name, time="0")
        ET.SubElement(case, "skipped", message=reason)
        cases.append(case)
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(case.find("failure") is not None for case in cases)))
    suite.set("errors", str(sum(case.find("error") is not None for case in cases)))
    suite.set("skipped", str(sum(case.find("skipped") is not None for case in cases)))
    suite.set("time", f"{sum(_seconds(r) for r in results):.3f}")
    ET.indent(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(descriptor, "wb") as file:
        ET.ElementTree(suite).write(file, encoding="utf-8", xml_declaration=True)
    os.replace(staging, path)
