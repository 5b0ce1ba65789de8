"""Schema drift (``--compare-db``): the app's models against that database's tables, by alembic's comparison
(``faultlab.doctor.drift``), in a process of its own: importing the user's app runs the user's code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from faultlab.backends.base import redact
from faultlab.doctor.contract import Check, CheckupContext
from faultlab.doctor.report import Checked, Finding, NotRun
from faultlab.doctor.where import locate
from faultlab.variants import PROJECT_ROOT

__all__ = ["SchemaDrift"]

TIMEOUT_S = 60
_REMEDY = "check the URL, and that the database answers and may be read"


class SchemaDrift(Check):
    name = "schema drift"
    needs = ("compare_db",)

    def end(self, ctx: CheckupContext) -> None:
        url, report = ctx.options["compare_db"], ctx.report
        module = ctx.target.partition(":")[0]
        paths = os.pathsep.join([str(ctx.app_dir), str(PROJECT_ROOT)])
        # The URL by the environment, not the command line, where any local user could read its password.
        env = {**os.environ, "PYTHONPATH": paths, "PYTHONDONTWRITEBYTECODE": "1", "FAULTLAB_COMPARE_URL": url}
        with tempfile.TemporaryDirectory(prefix="faultlab-drift-") as tmp:
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "faultlab.doctor.drift", module],
                    cwd=tmp, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                report.not_checked.append(
                    NotRun(f"schema drift against {redact(url)}", f"no answer within {TIMEOUT_S} s", _REMEDY)
                )
                return
        try:
            answer = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            answer = {"error": f"the comparison failed: {last}"}
        if "error" in answer:  # the rest of the checkup stands: this part is reported as not checked
            report.not_checked.append(NotRun(f"schema drift against {redact(url)}", redact(answer["error"]), _REMEDY))
            return
        report.checked.append(Checked(f"models against {redact(url)}", [], []))
        for difference in answer["differences"]:
            location = locate(difference.get("where"), ctx.app_dir, difference.get("role", ""))
            unlocated = "" if location else difference.get("unlocated", "the comparison named no model's line")
            report.findings.append(
                Finding("schema drift", "(the models)", difference["text"], location=location, unlocated=unlocated)
            )
