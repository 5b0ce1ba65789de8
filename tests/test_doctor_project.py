"""The doctor on a project of the usual layout (``tests/fixtures/projects/fullstack/backend``: a package named
``app``, settings from ``POSTGRES_*`` variables, routes under ``/api/v1`` behind a bearer token, alembic, a leaky
twin ``app.leaky:app``), copied into a temp dir: its own app is served, not faultlab's; without credentials the
verdict is incomplete; with a login the leak is found and the clean project gives nothing; and the database the
project is configured with is never written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem
from tests.lab_cli import run_lab

PROJECT = Path(__file__).parent / "fixtures" / "projects" / "fullstack" / "backend"
POSTGRES_URL = os.environ.get("FAULTLAB_POSTGRES_URL", DEFAULT_POSTGRES_URL)
LOGIN = "POST /api/v1/login/access-token form:username=admin@example.com,password=changethis"
SETUP = ("--setup", "alembic upgrade head", "--setup", "python -m app.initial_data")
TO_THE_THROWAWAY_PG = [
    arg
    for name, part in [("SERVER", "host"), ("PORT", "port"), ("USER", "user"), ("PASSWORD", "password"), ("DB", "name")]
    for arg in ("--env", f"POSTGRES_{name}={{db.{part}}}")
]


def _our_bin_first() -> str:
    """PATH with this environment's bin first: its alembic migrates the project's configured database."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def _purelib(python: Path | str) -> str:
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the fixture project: a test may give it a .venv, and nothing is left in the repository."""
    copy = tmp_path / "project" / "backend"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture
def configured_sqlite(tmp_path: Path, project: Path) -> Path:
    """The project's configured database: a SQLite file, migrated and seeded, as on a developer's machine."""
    path = tmp_path / "configured.db"
    env = {
        **os.environ,
        "SQLITE_FILE": str(path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for command in (["alembic", "upgrade", "head"], [sys.executable, "-m", "app.initial_data"]):
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True, timeout=60)
    return path


def _doctor(project: Path, tmp_path: Path, *args: str, env: dict[str, str], target: str = "app.main:app") -> Any:
    result = run_lab(
        "doctor",
        target,
        "--app-dir",
        project,
        "--json",
        "--out",
        tmp_path / "out",
        *args,
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"no JSON report (exit {result.returncode}):\n{result.stderr}")
    return result, report


def _snapshot(path: Path) -> tuple[bytes, list[tuple[str, int]]]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        counts = [(t, db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in ("user", "item")]
    return path.read_bytes(), counts


def test_the_projects_own_app_is_served_and_without_credentials_the_checkup_is_incomplete(
    project: Path, configured_sqlite: Path, tmp_path: Path
) -> None:
    before = _snapshot(configured_sqlite)
    result, report = _doctor(
        project, tmp_path, "--env", "SQLITE_FILE={db.name}", *SETUP, env={"SQLITE_FILE": str(configured_sqlite)}
    )
    assert report["app_file"] == str(project / "app" / "main.py"), report["app_file"]
    operations = {c["operation"] for c in report["checked"]}
    assert "GET /api/v1/items/" in operations and not any("/todos" in o for o in operations), operations
    assert "todos.db" in report["engine_url"] and str(configured_sqlite) not in report["engine_url"], report[
        "engine_url"
    ]
    # The routes behind the token answered 401: not checked, and said why; never "nothing found".
    (items,) = [c for c in report["checked"] if c["operation"] == "GET /api/v1/items/"]
    assert items["statuses"] == [401] * 4 and items["not_checked"].startswith("it answered 401"), items
    reasons = {n["check"]: n["reason"] for n in report["not_checked"]}
    by_id = reasons["every check on GET /api/v1/items/{id}"]
    assert by_id.startswith("no id to use") and "POST /api/v1/items/ answered 401" in by_id, by_id
    assert "--login" in report["not_checked"][0]["remedy"], report["not_checked"][0]
    assert (report["verdict"], result.returncode) == ("incomplete", 3), (report["verdict"], result.stderr)
    assert _snapshot(configured_sqlite) == before


def test_an_app_still_on_its_configured_database_gets_no_request_and_no_setup(
    project: Path, configured_sqlite: Path, tmp_path: Path
) -> None:
    before = _snapshot(configured_sqlite)
    for setup in ((), SETUP):  # without set-up the server's own report stops it; with, the import before the set-up
        result = run_lab(
            "doctor", "app.main:app", "--app-dir", project, *setup, "--login", LOGIN, "--out", tmp_path / "out",
            cwd=tmp_path, env={"SQLITE_FILE": str(configured_sqlite)},
        )  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        error = " ".join(result.stderr.split())
        assert f"your app's engine uses sqlite:///{configured_sqlite}, not the throwaway" in error, error
        assert "--env SQLITE_FILE={db.name}" in error and "--db-env NAME" in error and "--use-configured-db" in error
        assert "GET /api/v1" not in result.stdout and "changethis" not in result.stdout + result.stderr
    assert _snapshot(configured_sqlite) == before


def test_a_bad_placeholder_is_refused_before_anything_starts(project: Path, tmp_path: Path) -> None:
    result = run_lab("doctor", "app.main:app", "--app-dir", project, "--env", "POSTGRES_DB={db.database}", cwd=tmp_path)
    assert result.returncode == 2 and "no placeholder {db.database}" in result.stderr, result.stderr


def test_the_project_is_served_by_its_own_venv_without_faultlab_in_it(project: Path, tmp_path: Path) -> None:
    """The project's .venv (made here, seeing this environment's libraries but not its faultlab) serves the app."""
    venv = project / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    python = venv / "bin" / "python"
    site, ours = _purelib(python), _purelib(sys.executable)
    Path(site, "libraries.pth").write_text(ours + "\n")  # a .pth in a .pth's dir is not run: faultlab stays out
    assert subprocess.run([python, "-c", "import faultlab"], capture_output=True, cwd=tmp_path).returncode != 0
    # No alembic script in that venv: its module, by the venv's python (first on the set-up's PATH).
    setup = ["--setup", "python -m alembic upgrade head", "--setup", "python -m app.initial_data"]
    result, report = _doctor(
        project, tmp_path, "--env", "SQLITE_FILE={db.name}", *setup, "--login", LOGIN, env={}, target="app.leaky:app"
    )
    assert report["python"] == str(python) and report["app_file"] == str(project / "app" / "leaky.py"), report
    leaks = {o for f in report["findings"] if f["kind"] == "connection leak" for o in f["operations"]}
    assert {"GET /api/v1/items/", "POST /api/v1/items/"} <= leaks, report["findings"]
    # One cause, one finding: the routes whose connection get_current_user takes (with the session the leaky
    # get_db gave it) are found at that get_db, with those that take it themselves.
    (leak,) = [f for f in report["findings"] if f["kind"] == "connection leak"]
    assert {"GET /api/v1/users/me", "GET /api/v1/items/{id}"} <= set(leak["operations"]), leak["operations"]
    source = (project / "app" / "leaky.py").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(source, 1) if "return Session(engine)" in text)
    where = leak["location"]
    assert (where["file"], where["line"], where["function"]) == ("app/leaky.py", line, "get_db_returning"), where
    assert result.returncode == 1


@pytest.fixture
def configured_postgres(project: Path) -> Iterator[dict[str, str]]:
    """The project's configured database: a PostgreSQL database of its own, migrated and seeded."""
    if problem := postgres_problem(POSTGRES_URL):
        pytest.skip(f"{problem}; set FAULTLAB_POSTGRES_URL to a server where the lab may create databases")
    from sqlalchemy import make_url

    from faultlab.backends.postgres import admin_connection

    admin = make_url(POSTGRES_URL)
    name = f"fullstack_configured_{uuid.uuid4().hex[:8]}"
    env = {
        "POSTGRES_SERVER": admin.host or "127.0.0.1",
        "POSTGRES_PORT": str(admin.port or 5432),
        "POSTGRES_USER": admin.username or "postgres",
        "POSTGRES_PASSWORD": admin.password or "",
        "POSTGRES_DB": name,
    }
    connection = admin_connection(POSTGRES_URL)
    connection.execute(f'CREATE DATABASE "{name}"')
    try:
        for command in (["alembic", "upgrade", "head"], [sys.executable, "-m", "app.initial_data"]):
            subprocess.run(
                command, cwd=project, env={**os.environ, **env, "PATH": _our_bin_first()}, check=True, timeout=60
            )
        yield env
    finally:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def _pg_snapshot(env: dict[str, str]) -> list[tuple[str, int]]:
    from faultlab.backends.postgres import admin_connection

    url = f"postgresql://{env['POSTGRES_USER']}@{env['POSTGRES_SERVER']}:{env['POSTGRES_PORT']}/{env['POSTGRES_DB']}"
    connection = admin_connection(url)
    try:
        return [(t, connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in ("user", "item")]
    finally:
        connection.close()


@pytest.mark.parametrize(("target", "leaks"), [("app.leaky:app", True), ("app.main:app", False)])
def test_with_a_login_on_postgresql_the_leak_is_found_and_the_clean_project_is_clean(
    target: str, leaks: bool, project: Path, configured_postgres: dict[str, str], tmp_path: Path
) -> None:
    before = _pg_snapshot(configured_postgres)
    args = ["--db", POSTGRES_URL, *TO_THE_THROWAWAY_PG, *SETUP, "--login", LOGIN]
    result, report = _doctor(project, tmp_path, *args, env=configured_postgres, target=target)
    assert report["engine_url"].startswith("postgresql+psycopg://faultlab_doctor_"), report["engine_url"]
    assert "changethis" not in result.stdout + result.stderr and "Bearer" not in result.stdout + result.stderr
    found = {(f["kind"], o) for f in report["findings"] for o in f["operations"]}
    if leaks:
        assert ("connection leak", "GET /api/v1/items/") in found, found
        assert ("pool exhausted", "GET /api/v1/items/") in found, found
        assert result.returncode == 1
    else:  # the template's engine sets no statement timeout: on PostgreSQL that is its one finding
        assert (found, result.returncode) == ({("no statement timeout", "(the engine)")}, 1), report["findings"]
        assert report["not_checked"] == [], report["not_checked"]
        (location,) = [f["location"] for f in report["findings"]]
        assert (location["file"], location["line"]) == ("app/core/db.py", 7), location  # engine = create_engine(...)
        assert "verdict: 1 finding(s) (exit 1)" in result.stderr, result.stderr[-3000:]
        # The login, sent the doctor's made-up values, answered 400 every time: no tick for work it never did.
        progress = " ".join(result.stderr.split())
        assert "POST /api/v1/login/access-token ~ refused every time (4xx)" in progress, progress
    assert _pg_snapshot(configured_postgres) == before


def test_an_app_that_writes_its_configured_database_at_import_is_refused_the_connection(tmp_path: Path) -> None:
    """The harness's guard is in place before the app's first import: code that writes at import time too."""
    configured = tmp_path / "real.db"
    (tmp_path / "eager.py").write_text(
        "import os\nfrom fastapi import FastAPI\nfrom sqlalchemy import create_engine\n"
        "engine = create_engine(os.environ['REAL_DB'])\n"
        "with engine.begin() as connection:\n    connection.exec_driver_sql('CREATE TABLE t (x INTEGER)')\n"
        "app = FastAPI()\n"
    )
    result = run_lab(
        "doctor", "eager:app", "--app-dir", tmp_path, cwd=tmp_path, env={"REAL_DB": f"sqlite:///{configured}"}
    )
    error = " ".join(result.stderr.split())
    assert result.returncode == 2 and f"your app tried to connect to the sqlite database '{configured}'" in error, error
    assert "--use-configured-db" in error and not configured.exists()


def test_what_the_reports_show_of_secrets_is_their_names() -> None:
    from faultlab.doctor.credentials import Credentials, parse_header, parse_login
    from faultlab.doctor.settings import AppSettings, parse_env
    from faultlab.doctor.setup import shown_command

    credentials = Credentials([parse_header("Authorization: Bearer s3cret")], parse_login(LOGIN))
    assert credentials.shown() == [
        "header Authorization",
        "login POST /api/v1/login/access-token (form: username, password) → bearer token (not sent yet)",
    ]
    settings = AppSettings(parse_env(["POSTGRES_DB={db.name}", "POSTGRES_PASSWORD={db.password}"]), ["DB_URL"])
    values = settings.environment("postgresql+psycopg://role:pw@127.0.0.1:5432/faultlab_doctor_x")
    assert values == {"DB_URL": "postgresql+psycopg://role:pw@127.0.0.1:5432/faultlab_doctor_x",
                      "POSTGRES_DB": "faultlab_doctor_x", "POSTGRES_PASSWORD": "pw"}  # fmt: skip
    assert settings.names() == ["DB_URL", "POSTGRES_DB", "POSTGRES_PASSWORD"]
    shown = shown_command("python seed.py --password hunter2 ADMIN_TOKEN=abc postgresql://u:pw@h/db")
    assert shown == "python seed.py --password '***' 'ADMIN_TOKEN=***' 'postgresql://u:***@h/db'", shown
    # curl's header and user, and a password glued to its flag, as set-up commands often carry them.
    assert shown_command("curl -H 'Authorization: Bearer s3cret' -u me:pw2 http://h/seed") == (
        "curl -H '***' -u '***' http://h/seed"
    )
    assert shown_command("mysql -ph4x -h db < seed.sql") == "mysql '-p***' -h db '<' seed.sql"


def test_an_app_that_echoes_a_secret_it_was_given_is_shown_with_it_masked(tmp_path: Path) -> None:
    """Settings named as secrets, headers and the login's fields never come back out, whatever the app says."""
    (tmp_path / "echo.py").write_text(
        "import os\nraise ValueError(f\"bad settings: SECRET_KEY={os.environ['SECRET_KEY']!r}, "
        "ENVIRONMENT={os.environ['ENVIRONMENT']!r}\")\n"
    )
    result = run_lab(
        "doctor", "echo:app", "--app-dir", tmp_path, "--json", "--env", "SECRET_KEY=hunter2hunter2",
        "--env", "ENVIRONMENT=staging", "--header", "X-Api-Key: k3y-s3cret", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "hunter2" not in result.stdout + result.stderr and "SECRET_KEY='***'" in result.stderr, result.stderr
    assert "ENVIRONMENT='staging'" in result.stderr  # a setting not named as a secret stays readable

    from faultlab.doctor.checkup import Project
    from faultlab.doctor.credentials import Credentials, parse_header, parse_login
    from faultlab.doctor.report import Finding, Location, Report
    from faultlab.doctor.secrets import Secrets
    from faultlab.doctor.settings import AppSettings, parse_env

    project = Project(
        settings=AppSettings(parse_env(["API_TOKEN=t0ken-value", "DEBUG=1", "DB_PASSWORD={db.password}"])),
        credentials=Credentials([parse_header("Authorization: Bearer s3cret-bearer")], parse_login(LOGIN)),
    )
    # As the app got them, once the throwaway database existed: the placeholder filled in.
    project.given_env = {**dict(project.settings.env), "DB_PASSWORD": "thr0waway-pw", "REDIS_URL": "redis://:rpw@h/0"}
    said = "echoed t0ken-value, s3cret-bearer, changethis, thr0waway-pw, redis://:rpw@h/0, postgresql://u:pw9@db/x"
    at = Location("app/t0ken-value.py", 3, "route", path="/home/changethis/app/t0ken-value.py")
    report = Report("m:app", "sqlite", findings=[Finding("server error", "GET /changethis", said, location=at)])
    Secrets.given(project).mask_all(report)
    finding = report.findings[0]
    assert finding.evidence == "echoed ***, ***, ***, ***, redis://:***@h/0, postgresql://u:***@db/x", finding
    # The username and DEBUG=1 stay readable; the report's own parts (its operations, its files) are not masked.
    assert "admin@example.com" not in Secrets.given(project).values and "1" not in Secrets.given(project).values
    assert (finding.operation, finding.location) == ("GET /changethis", at) and at.path.startswith("/home/changethis")
