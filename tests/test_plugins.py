"""The plugin contract (``plugins.registry``): refused at registration with the plugin's name and the rule, a
registry that is an object built by ``load_plugins`` (nothing registered at import), and a witness from another
distribution, found through its entry point, taking part in a run like a built-in one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from faultlab.errors import PluginError
from faultlab.plugins.registry import (
    ENTRY_POINT_GROUP,
    Action,
    Kind,
    ObservationSpec,
    Registry,
    Witness,
    check_returned,
    load_plugins,
    register_witness,
)
from tests.lab_cli import run_lab


class _Sampled(Witness):
    name = "test_sampled"
    title = "t"
    observations = (ObservationSpec("test_sampled_value", Kind.COUNT, "d"),)
    sampled = ("test_sampled_value",)

    def observe(self, ctx: Any) -> dict[str, Any]:
        return {"test_sampled_value": 1}


class _Charted(Witness):
    name = "test_charted"
    title = "t"
    observations = (ObservationSpec("test_charted_value", Kind.COUNT, "d"),)
    charts = (("test_charted_valu", "a typo"),)

    def observe(self, ctx: Any) -> dict[str, Any]:
        return {"test_charted_value": 1}


class _ExpectParams(BaseModel):
    expect: int = 1


class _Clashing(Action):
    name = "test_clashing"
    summary = "s"
    Params: ClassVar[type[BaseModel]] = _ExpectParams

    def run(self, ctx: Any, params: Any) -> str:
        return "done"


REFUSED = {
    "sampled without sample()": (_Sampled, "declares sampled = ('test_sampled_value',) but has no sample()"),
    "a chart of nothing it observes": (_Charted, "charts names test_charted_valu, which it does not observe"),
    "a parameter named like a step field": (_Clashing, "its parameter expect has the name of a step's own field"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_plugin_that_breaks_the_contract_is_refused_with_its_name_and_the_rule(case: str) -> None:
    cls, rule = REFUSED[case]
    registry = load_plugins()  # one of its own: this test tries to change it
    register = registry.add_action if issubclass(cls, Action) else registry.add_witness
    before = (set(registry.witnesses), set(registry.actions), set(registry.observations))
    with pytest.raises(PluginError) as caught:
        register(cls)  # type: ignore[arg-type]
    assert f"tests.test_plugins.{cls.__qualname__}" in str(caught.value) and rule in str(caught.value), caught.value
    assert (set(registry.witnesses), set(registry.actions), set(registry.observations)) == before


def test_a_witness_that_returns_a_name_it_does_not_declare_is_named(registry: Registry) -> None:
    witness = registry.witnesses["pool"]()
    with pytest.raises(PluginError) as caught:
        check_returned(witness, "observe", {"pool_checked_ot": 1}, ["pool_checked_out"])
    message = str(caught.value)
    assert "faultlab.witnesses.pool.Pool: observe() returned pool_checked_ot, which it does not declare" in message
    assert "did not return pool_checked_out" in message


def test_each_load_is_a_registry_of_its_own_and_marking_registers_nothing(registry: Registry) -> None:
    """The decorators only mark a class; what a registry holds is what its load collected (pluggy's way), so
    a class marked after a load, or a change to another registry, reaches no registry that exists."""

    @register_witness
    class Late(Witness):
        name = "test_late"
        title = "t"
        observations = (ObservationSpec("test_late_value", Kind.COUNT, "d"),)

        def observe(self, ctx: Any) -> dict[str, Any]:
            return {"test_late_value": 1}

    other = load_plugins()
    other.add_witness(Late)
    assert "test_late" in other.witnesses and "test_late_value" in other.observations
    assert "test_late" not in registry.witnesses and "test_late_value" not in registry.observations
    assert "test_late" not in load_plugins().witnesses
    assert list(load_plugins().observations) == list(registry.observations), "the same plugins, in the same order"


PLUGIN = '''
"""A witness of another distribution: the server's threads, as the operating system counts them."""
from __future__ import annotations

from typing import Any

import psutil

from faultlab.plugins.registry import Kind, ObservationSpec, Witness, register_witness


@register_witness
class ServerThreads(Witness):
    name = "server_threads"
    title = "the server's threads (the operating system)"
    observations = (
        ObservationSpec("server_threads", Kind.COUNT, "threads of the server's processes"),
        ObservationSpec("checkouts_counted", Kind.COUNT, "checkouts from the pool, counted inside the server"),
    )
    sampled = ("server_threads",)
    charts = (("server_threads", "threads of the server's processes"),)
    inside = "faultlab_threads_inside:install"

    def observe(self, ctx: Any) -> dict[str, Any]:
        counted = ctx.plugin_counters("checkouts", ("checkouts",))
        return {"server_threads": self._count(ctx), "checkouts_counted": counted and counted["checkouts"]}

    def sample(self, ctx: Any) -> dict[str, int | float]:
        return {"server_threads": self._count(ctx)}

    @staticmethod
    def _count(ctx: Any) -> int:
        return sum(psutil.Process(pid).num_threads() for pid in ctx.server.pids())

    @classmethod
    def parts(cls, values: Any) -> list[str]:
        return [] if values.get("server_threads") is None else [f"threads {values['server_threads']}"]
'''

INSIDE = '''
"""The witness's part inside the server: it counts the pool's checkouts, in counters of its own."""
from sqlalchemy import event

from faultlab.inside.extensions import Inside


def install(inside: Inside) -> None:
    counters = inside.counters("checkouts", ("checkouts",))
    if inside.engine is not None:
        event.listen(inside.engine, "checkout", lambda *args: counters.add("checkouts"))
'''

EXPERIMENT = """
name = "threads"
title = "A leak, with the server's threads beside it"
[fault]
variant = "missing_yield"
[fix]
variant = "app"
[[steps]]
kind = "request"
path = "/todos"
repeat = 4
sample_each = true
expect.fault = { pool_checked_out_peak = { min = 1 }, server_threads_peak.min = 1, checkouts_counted = { min = 4 } }
expect.fix = { pool_checked_out_peak = 0, server_threads = { min = 1 } }
[explain]
why = "w"
fix = "f"
remember = "r"
"""


def _distribution(root: Path, module: str, source: str, others: dict[str, str] | None = None) -> Path:
    """A distribution of its own, installed as pip would lay it out: the module (and ``others``), its dist-info."""
    root.mkdir()
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    for name, text in (others or {}).items():
        (root / f"{name}.py").write_text(textwrap.dedent(text))
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{module} = {module}\n")
    return root


def _with(path: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH", "")]))}


def test_a_witness_from_another_distribution_takes_part_in_the_schema_the_run_the_chart_and_the_report(
    tmp_path: Path,
) -> None:
    site = _distribution(tmp_path / "site", "faultlab_threads", PLUGIN, {"faultlab_threads_inside": INSIDE})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "threads.toml").write_text(EXPERIMENT)
    out = tmp_path / "out"
    done = run_lab("--experiments", mine, "threads", "--out", out, cwd=tmp_path, env=_with(site))
    assert done.returncode == 0, done.stdout + done.stderr
    report = out / "threads"
    journal = json.loads((report / "journal.json").read_text())
    fault_step = journal["runs"]["fault"]["steps"][0]
    assert fault_step["observation"]["values"]["server_threads_peak"] >= 1, fault_step["observation"]["values"]
    assert fault_step["observation"]["values"]["checkouts_counted"] >= 4, "counted inside, read from outside"
    assert any(c["observation"] == "server_threads_peak" and c["outcome"] == "pass" for c in fault_step["checks"])
    assert "threads " in (report / "report.md").read_text()
    assert "threads of the server&#39;s processes" in (report / "report.html").read_text()


# What the command line does first: load the plugins, then read a file with the registry's schema.
LOAD = """
from faultlab.model.catalogue import CATALOGUE_DIR, load_file
from faultlab.plugins.registry import load_plugins
registry = load_plugins()
load_file(registry, CATALOGUE_DIR / "missing-yield.toml")
print(len(registry.observations))
"""


def _registry_from(site: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=tmp_path,
        env={**os.environ, **_with(site)},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_plugin_may_import_the_experiment_model_at_its_top(tmp_path: Path) -> None:
    """Nothing is built from the registry at import (the schema is built from a registry, when it is asked for),
    so a plugin's natural top-level import of the model neither fails nor leaves a half-built schema."""
    site = _distribution(tmp_path / "site", "faultlab_eager", "from faultlab.model.spec import RunName, schema\n")
    done = _registry_from(site, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(done.stdout) > 0


def test_a_plugin_that_asks_for_the_registry_while_it_loads_gets_a_clear_error(tmp_path: Path) -> None:
    """Asked for at the plugin's top (while the registry loads it), the registry names the problem, rather than
    "Cannot take a Union of no types" or a half-built schema."""
    asks = "from faultlab.plugins.registry import load_plugins\nload_plugins()\n"
    done = _registry_from(_distribution(tmp_path / "site", "faultlab_eager", asks), tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("faultlab.errors.PluginError: a plugin asked for the registry while the plugins were"), last
    assert "inside the function that needs it" in last, done.stderr
