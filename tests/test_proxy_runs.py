"""The fault proxy wired into a run (``setup.network = "fault-proxy"``): the app reaches its database through it,
the actions switch it, its witness counts what went through, and nothing of it outlives the run."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from faultlab.backends.base import postgres_problem
from faultlab.model.catalogue import Entry, load_file
from faultlab.model.results import Verdict
from faultlab.plugins.registry import Registry
from faultlab.running.orchestrate import run_experiment
from tests.catalogue_runs import POSTGRES_URL

EXPERIMENT = """
name = "proxy-drop"
title = "Every connection through the proxy reset at once; the pre-ping reconnects"
backends = ["postgresql"]

[setup]
network = "fault-proxy"

[fault]
variant = "no_pre_ping"

[fix]
variant = "app"

[[steps]]
kind = "request"
title = "One read"
path = "/todos"
expect.fault = { status = 200, proxy_open = { min = 1 }, proxy_bytes_up = { min = 1 } }
expect.fix = { status = 200, proxy_open = { min = 1 }, proxy_bytes_down = { min = 1 } }

[[steps]]
kind = "action"
action = "drop_connections"
title = "The proxy resets every connection"
expect.fault = { proxy_resets = { min = 1 }, proxy_open = 0 }
expect.fix = { proxy_resets = { min = 1 }, proxy_open = 0 }

[[steps]]
kind = "request"
title = "One read after the reset"
path = "/todos"
expect.fault = { status = 500 }
expect.fix = { status = 200 }

[explain]
why = "w"
fix = "f"
remember = "r"
"""


def test_a_run_goes_through_its_proxy_and_leaves_none_behind(registry: Registry, tmp_path: Path) -> None:
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(problem)
    path = tmp_path / "proxy-drop.toml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    result = run_experiment(
        registry,
        Entry(load_file(registry, path), path),
        tmp_path / "out",
        backend="postgresql",
        postgres_url=POSTGRES_URL,
    )
    failed = [
        f"{run} {step.number}: {check.observation} {check.expected}, saw {check.observed!r}"
        for run, r in result.runs.items()
        for step in r.steps
        for check in step.checks
        if check.outcome != "pass"
    ]
    assert result.verdict is Verdict.AS_EXPECTED, failed + [r.error or "" for r in result.runs.values()]
    dropped = result.runs["fault"].steps[1].observation.values
    assert dropped["proxy_resets"] == result.runs["fault"].steps[0].observation.values["pool_open"], dropped
    error = result.runs["fault"].steps[2].observation.values["error"]
    assert "server closed the connection unexpectedly" in error, "an RST reads as the server gone: " + error
    assert not [t for t in threading.enumerate() if t.name == "lab-fault-proxy"], "a proxy outlived its run"
