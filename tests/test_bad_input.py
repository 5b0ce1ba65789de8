"""Malformed experiment files and bad options: a clear message, exit 2, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from faultlab.errors import ExperimentFileError, UsageError
from faultlab.model.catalogue import load_catalogue, load_file
from faultlab.plugins.registry import Registry
from tests.lab_cli import run_lab

BROKEN = Path(__file__).parent / "fixtures" / "broken"

# specimen -> what the message must say (the field, and what was expected)
SPECIMENS = {
    "syntax-error": "TOML syntax: Illegal character '\\n' (at line 2",
    "missing-fix": "fix: required field is missing",
    "wrong-type": "steps[1].repeat: Input should be a valid integer",
    "unknown-step": "steps[1]: kind must be one of 'request', 'action', 'probe', not teleport",
    "unknown-action": "steps[1]: action must be one of 'delete_db', 'drop_connections', 'gc_collect'",
    "unknown-observation": "names no known observation: latency (known: action, background_latency_max_ms,",
    "unknown-variant": "fault.variant: unknown variant 'missing_yeild'; did you mean 'missing_yield'",
    "code-outside-project": "code.fault: 'os.path' is not code of this project",
    "env-not-allowed": "fix.env: env may not set PYTHONPATH (the lab sets DATABASE_URL, FAULTLAB_* and uvicorn's",
    "name-mismatch": "name: 'something-else' must match the file name ('name-mismatch')",
    "gc-with-workers": "steps[1]: gc_collect reaches only the worker that answers it, and the fault run has 2 workers",
    "empty-remember": "explain.remember: String should match pattern",
    "bad-matcher": "steps[1].expect.fault.status: expected a number, true/false, text, or a table",
    "restart-shared-server": "steps[1]: restart_database stops or signals the database server; set setup.database",
    "own-cluster-together": 'setup.database = "own-cluster": both runs share the server; use together = false',
    "proxy-without-setup": 'steps[1]: set_proxy switches the fault proxy; set setup.network = "fault-proxy"',
    "proxy-on-sqlite": 'setup.network = "fault-proxy" sits between the app and a database server: use backends',
    "proxy-observed-without-setup": "steps[1]: proxy_resets is seen by the fault proxy; set setup.network",
    "pooler-on-sqlite": 'setup.pooler = "pgbouncer" pools connections to a PostgreSQL server: use backends',
    "max-connections-shared-server": "setup.max_connections is a setting of a server of the run's own",
}


def test_every_specimen_is_covered() -> None:
    assert {p.stem for p in BROKEN.glob("*.toml")} == set(SPECIMENS)


@pytest.mark.parametrize("specimen", sorted(SPECIMENS))
def test_broken_specimen_is_reported_with_path_and_field(registry: Registry, specimen: str) -> None:
    path = BROKEN / f"{specimen}.toml"
    with pytest.raises(ExperimentFileError) as caught:
        load_file(registry, path)
    message = str(caught.value)
    assert str(path) in message
    assert SPECIMENS[specimen] in message, message


def test_cli_reports_a_malformed_file_and_starts_nothing(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "wrong-type.toml").write_text((BROKEN / "wrong-type.toml").read_text())
    result = run_lab("--experiments", mine, "wrong-type", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{mine / 'wrong-type.toml'}: not a valid experiment file" in result.stderr
    assert "steps[1].repeat" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "lab-reports").exists()


def test_a_missing_experiments_dir_is_a_usage_error(tmp_path: Path) -> None:
    result = run_lab("--experiments", tmp_path / "nowhere", "--list", cwd=tmp_path)
    assert result.returncode == 2
    assert "nowhere: not a directory of .toml experiment files" in result.stderr


def test_a_user_experiment_cannot_shadow_a_catalogue_one(registry: Registry, tmp_path: Path) -> None:
    from faultlab.model.catalogue import CATALOGUE_DIR

    (tmp_path / "stale-schema.toml").write_text((CATALOGUE_DIR / "stale-schema.toml").read_text())
    with pytest.raises(UsageError, match="two experiments are named 'stale-schema'"):
        load_catalogue(registry, [tmp_path])


def test_out_pointing_at_a_file_is_refused_before_anything_starts(tmp_path: Path) -> None:
    a_file = tmp_path / "reports.txt"
    a_file.write_text("mine, keep it")
    for out in (a_file, a_file / "sub"):
        result = run_lab("stale-schema", "--out", out, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert f"--out {out}: cannot write reports there" in result.stderr
        assert "choose a writable directory" in result.stderr
    assert a_file.read_text() == "mine, keep it"


def test_all_must_stand_alone(tmp_path: Path) -> None:
    result = run_lab("all", "stale-schema", cwd=tmp_path)
    assert result.returncode == 2
    assert "'all' runs the whole catalogue; give it alone" in result.stderr


def test_a_user_experiment_is_listed_beside_the_catalogue(tmp_path: Path) -> None:
    """Data only: a new scenario for the existing variants (test_failures.py runs it)."""
    fixtures = Path(__file__).parent / "fixtures" / "experiments"
    listing = run_lab("--experiments", fixtures, "--list", cwd=tmp_path)
    assert "request-timeout" in listing.stdout and "missing-yield" in listing.stdout


def test_a_variant_may_name_another_app_of_its_module_but_only_one_that_exists() -> None:
    from faultlab import variants

    assert variants.resolve("idle_in_transaction:fixed_app").target == "faults.idle_in_transaction:fixed_app"
    with pytest.raises(UsageError, match=r"faults/idle_in_transaction\.py assigns no 'nope' at its top level"):
        variants.resolve("idle_in_transaction:nope")
    with pytest.raises(UsageError, match="unknown variant 'app'"):
        variants.resolve("app:fixed_app")
