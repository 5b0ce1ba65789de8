"""Fix it yourself: the learner's workspace, judged on real servers with the experiment's own evidence."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faultlab.errors import ExperimentFileError
from faultlab.model.catalogue import CATALOGUE_DIR, load_file
from faultlab.plugins.registry import Registry
from tests.lab_cli import RUN_LAB, Lines, run_lab

WATCH_DEADLINE_S = 90.0


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _fix(name: str, cwd: Path) -> Path:
    result = run_lab("fix", name, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "faultlab-work" / name


def test_fix_writes_a_workspace_with_the_task_and_never_overwrites_it(tmp_path: Path) -> None:
    workspace = _fix("missing-yield", tmp_path)
    assert _files(workspace) == {"get_db.py", "TASK.md", "progress.json"}
    code = (workspace / "get_db.py").read_text()
    assert "from app.database import" in code and "app = create_app()" in code, code
    assert "# BUG" not in code, "the workspace names no solution"
    task = (workspace / "TASK.md").read_text()
    assert "What the lab will observe" in task and "docs/tutorial-map.md" in task
    assert "finally:" not in task and "yield db" not in task, "TASK.md gives no solution"
    (workspace / "get_db.py").write_text("# my work\n")
    again = run_lab("fix", "missing-yield", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    assert (workspace / "get_db.py").read_text() == "# my work\n"
    inside = run_lab("fix", "missing-yield", "--dir", RUN_LAB.parent / "faults" / "mine", cwd=tmp_path)
    assert inside.returncode == 2 and "inside the lab's faults/" in inside.stderr


def test_a_syntax_error_gives_the_learners_file_and_line(tmp_path: Path) -> None:
    workspace = _fix("no-commit", tmp_path)
    (workspace / "create_todo.py").write_text("from app.main import create_app\n\ndef broken(:\n    pass\n")
    result = run_lab("check", "no-commit", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{workspace / 'create_todo.py'}:3: SyntaxError" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not any(p.name == "__pycache__" for p in workspace.rglob("*"))


def test_a_cheat_that_returns_canned_data_fails(tmp_path: Path) -> None:
    workspace = _fix("no-commit", tmp_path)
    cheat = workspace / "create_todo.py"
    text = cheat.read_text()
    start = text.index("def create_todo_without_commit")
    canned = (
        "def create_todo_without_commit(payload: TodoCreate, db: DbSession) -> dict[str, object]:\n"
        "    return {'id': 1, 'title': payload.title, 'completed': False, 'priority': 0,\n"
        "            'tags': [], 'created_at': '2026-01-01T00:00:00'}\n\n\n"
    )
    cheat.write_text(text[:start] + canned + text[text.index("app = create_app") :])
    result = run_lab("check", "no-commit", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "step 1 (Create a todo): rows in the database (the lab counts them itself): yours 0, a fix gives 1" in (
        result.stdout
    ), result.stdout


def test_watch_fails_a_fresh_workspace_then_passes_after_a_save_and_progress_shows_it(tmp_path: Path) -> None:
    """A fresh workspace fails with its first failing expectation named; saving the fix re-checks and passes."""
    workspace = _fix("no-commit", tmp_path)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {**os.environ, "COLUMNS": "200", "TMPDIR": str(private_tmp)}
    watcher = subprocess.Popen(
        [sys.executable, str(RUN_LAB), "check", "no-commit", "--watch", "--dir", workspace],
        cwd="/", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        lines = Lines(watcher.stdout)
        lines.wait_for("a hint:", deadline_s=WATCH_DEADLINE_S)
        first = "".join(lines.seen)
        assert "step 1 (Create a todo): rows in the database (the lab counts them itself): yours 0, a fix gives 1" in (
            first
        ), first
        lines.wait_for("watching create_todo.py")
        code = workspace / "create_todo.py"
        fixed = code.read_text().replace("db.flush()", "db.commit()")
        # It says it is watching just before it begins to: a save in between goes unseen, so save until one is.
        code.write_text(fixed)
        deadline = time.monotonic() + WATCH_DEADLINE_S
        while not lines.poll("saved: checking again", within_s=2.0):
            assert watcher.poll() is None and time.monotonic() < deadline, "".join(lines.seen)
            code.write_text(fixed)
        rest = lines.text(deadline_s=WATCH_DEADLINE_S)[len(first) :]
        watcher.wait(timeout=WATCH_DEADLINE_S)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    output = first + rest
    assert watcher.returncode == 0, output
    assert "saved: checking again" in rest and "fixed:" in rest and "Explain it" in rest, rest
    written = {f"faultlab-work/no-commit/{name}" for name in ("create_todo.py", "TASK.md", "progress.json")}
    assert _files(tmp_path) == written, "nothing outside the workspace, and the temp dirs are gone"
    progress = run_lab("progress", cwd=tmp_path)
    assert progress.returncode == 0, progress.stderr
    assert re.search(r"no-commit\s+│\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+│\s+2\b", progress.stdout), progress.stdout
    assert "next: python run_lab.py fix missing-yield" in progress.stdout


def test_hints_come_one_more_at_a_time_and_the_solution_only_when_asked(tmp_path: Path) -> None:
    _fix("missing-yield", tmp_path)
    first = run_lab("check", "missing-yield", "--hint", cwd=tmp_path)
    second = run_lab("check", "missing-yield", "--hint", cwd=tmp_path)
    assert "hint 1/3" in first.stdout and "hint 2/3" not in first.stdout, first.stdout
    assert "hint 2/3" in second.stdout, second.stdout
    assert "finally:" not in first.stdout + second.stdout.split("hint 2/3")[0]
    solution = run_lab("check", "missing-yield", "--solution", cwd=tmp_path)
    assert solution.returncode == 0 and "yield db" in solution.stdout and "db.close()" in solution.stdout


def test_a_task_without_code_wants_predictions_before_it_runs(tmp_path: Path) -> None:
    workspace = _fix("deleted-db", tmp_path)
    assert _files(workspace) == {"predictions.toml", "TASK.md", "progress.json"}
    assert "There is nothing to code" in (workspace / "TASK.md").read_text()
    result = run_lab("check", "deleted-db", cwd=tmp_path)
    assert result.returncode == 2 and "answer question 1, 2, 3 first" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("name", "change", "problem"),
    [
        ("deleted-db", "step = 5 }", "step = 4 }"),  # step 4 runs in the fix run only
        ("missing-yield", 'starter = "faults.missing_yield"', 'starter = "app.main"'),
    ],
)
def test_a_bad_learn_table_is_refused_with_its_field(
    registry: Registry, tmp_path: Path, name: str, change: str, problem: str
) -> None:
    source = (CATALOGUE_DIR / f"{name}.toml").read_text()
    assert change in source
    path = tmp_path / "bad.toml"
    path.write_text(source.replace(change, problem, 1))
    with pytest.raises(ExperimentFileError) as error:
        load_file(registry, path)
    assert "learn" in str(error.value), str(error.value)


def test_predict_shows_the_answers_beside_what_happened(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(RUN_LAB), "return-with-finally", "--predict", "--out", tmp_path / "reports"],
        cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, input="it stays at 0\n", capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "will the pool's checked-out count stay at 0?" in result.stdout
    shown = result.stdout.split("your predictions, and what happened")[1]
    assert "you said: it stays at 0" in shown and "the lab saw (fault run, step 1): 200×12" in shown, shown


def test_a_server_that_dies_at_start_up_is_reported_as_the_learners_exception() -> None:
    from faultlab.learn.check import _server_failure

    log = (
        "the server (faultlab_learner:app) exited with code 3 while starting; last lines of its log:\n"
        '  File "/tmp/run/learner/faultlab_learner.py", line 9, in migrate\n'
        "    upgrade(engine, 'nope')\n"
        "alembic.util.exc.CommandError: Can't locate revision identified by 'nope'\n"
        "ERROR:    Application startup failed. Exiting."
    )
    outcome = _server_failure(log, "/tmp/run/learner/faultlab_learner.py", "/home/me/work/prepare_schema.py")
    assert not outcome.fixed
    assert outcome.headline == (
        "/home/me/work/prepare_schema.py:9: alembic.util.exc.CommandError: Can't locate revision identified by 'nope'"
    )
    assert "serving prepare_schema.py" in outcome.details[0]


def _with_loader(broken: str, loader: str, unique: bool = False) -> str:
    """The broken list with ``loader`` (a name from sqlalchemy.orm) applied to ``Todo.tags``."""
    fixed = broken.replace(
        "from sqlalchemy import select", f"from sqlalchemy import select\nfrom sqlalchemy.orm import {loader}"
    )
    fixed = fixed.replace("select(Todo).order_by", f"select(Todo).options({loader}(Todo.tags)).order_by")
    return fixed.replace("list(db.scalars(query))", "list(db.scalars(query).unique())") if unique else fixed


def test_n_plus_one_is_judged_by_its_statements_and_tags_not_by_the_loader_chosen(tmp_path: Path) -> None:
    """``joinedload`` (one statement) passes as well as the reference ``selectinload`` (two); dropping the tags
    to save the queries fails, and so does a query that loses the list's paging. (That the broken list fails
    is the catalogue's baseline: tests/test_experiments.py.)"""
    workspace = _fix("n-plus-one", tmp_path)
    mine = workspace / "list_todos.py"
    broken = mine.read_text()
    assert "select(Todo).order_by" in broken and "return list(db.scalars(query))" in broken, broken
    mine.write_text(_with_loader(broken, "noload"))
    cheat = run_lab("check", "n-plus-one", cwd=tmp_path)
    tags = """a fix gives contains '"tags":["home","urgent"]'"""
    assert cheat.returncode == 1 and tags in cheat.stdout, cheat.stdout
    mine.write_text(
        _with_loader(broken, "selectinload").replace(
            "return list(db.scalars(query))", "return list(db.scalars(select(Todo).options(selectinload(Todo.tags))))"
        )
    )
    unpaged = run_lab("check", "n-plus-one", cwd=tmp_path)
    assert unpaged.returncode == 1 and "step 5 (A page: five todos from the sixth)" in unpaged.stdout, unpaged.stdout
    mine.write_text(_with_loader(broken, "joinedload", unique=True))
    joined = run_lab("check", "n-plus-one", cwd=tmp_path)
    assert joined.returncode == 0, joined.stdout + joined.stderr


def test_a_schema_on_some_routes_only_is_not_a_fix(tmp_path: Path) -> None:
    workspace = _fix("missing-response-schema", tmp_path)
    mine = workspace / "routes.py"
    broken = mine.read_text()
    start = broken.index("app = create_app(")
    mine.write_text(broken[:start] + "app = create_app(route_options={update_todo: NO_SCHEMA})\n")
    result = run_lab("check", "missing-response-schema", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "step 3 (Mark it done)" in result.stdout and "created_by_ip" in result.stdout, result.stdout


def test_an_experiment_without_a_task_points_to_the_task_for_its_fault(tmp_path: Path) -> None:
    result = run_lab("fix", "leak-hangs", cwd=tmp_path)
    assert result.returncode == 2 and "python run_lab.py fix missing-yield" in result.stderr, result.stderr
    assert not (tmp_path / "faultlab-work").exists()


def test_every_task_has_its_place_in_the_order_a_newcomer_meets_them(registry: Registry) -> None:
    from faultlab.learn.progress import ORDER
    from faultlab.model.catalogue import load_catalogue

    learnable = {entry.experiment.name for entry in load_catalogue(registry, []) if entry.experiment.learn is not None}
    assert learnable == set(ORDER), learnable ^ set(ORDER)


def test_an_experiment_with_no_task_says_how_to_run_it_where_it_runs(tmp_path: Path) -> None:
    result = run_lab("fix", "too-many-connections", cwd=tmp_path)
    assert result.returncode == 2 and "python run_lab.py too-many-connections --db postgresql" in result.stderr, (
        result.stderr
    )
    nothing = run_lab("progress", "--dir", tmp_path / "none", cwd=tmp_path)
    assert nothing.returncode == 0 and "no workspaces in" in nothing.stdout, nothing.stdout


def test_a_postgresql_only_task_is_checked_on_a_throwaway_postgresql_database(tmp_path: Path) -> None:
    """stale-connection runs on PostgreSQL only: check uses the server by itself, and says so when none answers."""
    from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem

    workspace = _fix("stale-connection", tmp_path)
    assert "throwaway database on your PostgreSQL server" in (workspace / "TASK.md").read_text()
    nowhere = run_lab(
        "check", "stale-connection", cwd=tmp_path, env={"FAULTLAB_POSTGRES_URL": "postgresql://u@127.0.0.1:9/x"}
    )
    assert nowhere.returncode == 2 and "runs on PostgreSQL only, and no PostgreSQL server answered" in nowhere.stderr
    if problem := postgres_problem(DEFAULT_POSTGRES_URL):
        pytest.skip(f"no PostgreSQL server: {problem}")
    broken = run_lab("check", "stale-connection", cwd=tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    step = "step 3 (Read again, one at a time): requests answered 2xx: yours 4, a fix gives 5"
    assert step in broken.stdout, broken.stdout
    engine = workspace / "engine.py"
    engine.write_text(engine.read_text().replace("pool_pre_ping=False", "pool_pre_ping=True"))
    fixed = run_lab("check", "stale-connection", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_async_engine_other_loop_is_fixed_by_a_dispose_or_by_the_lifespan(tmp_path: Path) -> None:
    """Both fixes its explanation gives pass: the import-time init ended with dispose(), or no import-time init."""
    from faultlab.backends.base import DEFAULT_POSTGRES_URL, postgres_problem

    if problem := postgres_problem(DEFAULT_POSTGRES_URL):
        pytest.skip(f"no PostgreSQL server: {problem}")
    workspace = _fix("async-engine-other-loop", tmp_path)
    code = workspace / "init_db.py"
    broken = run_lab("check", "async-engine-other-loop", cwd=tmp_path)
    assert broken.returncode == 1 and "the HTTP status: yours 500, a fix gives 200" in broken.stdout, broken.stdout
    original = code.read_text()
    code.write_text(
        original.replace(
            "    await migrate_to_head(engine)\n", "    await migrate_to_head(engine)\n    await engine.dispose()\n"
        )
    )
    disposed = run_lab("check", "async-engine-other-loop", cwd=tmp_path)
    assert disposed.returncode == 0, disposed.stdout + disposed.stderr
    in_lifespan = original.replace("asyncio.run(init_db())\n", "").replace("(prepare_schema=prepared_at_import)", "()")
    assert in_lifespan.count("create_async_app()") == 1 and "asyncio.run(" not in in_lifespan, in_lifespan
    code.write_text(in_lifespan)
    lifespan = run_lab("check", "async-engine-other-loop", cwd=tmp_path)
    assert lifespan.returncode == 0, lifespan.stdout + lifespan.stderr


def test_a_check_whose_fault_expectations_hold_on_the_learners_run_proves_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    """The baseline in ``check``: the fix run's checks all hold, but so do the fault run's, on the same run."""
    from faultlab.learn.check import check_file
    from faultlab.model.catalogue import Entry

    path = tmp_path / "hollow.toml"
    path.write_text(
        'name = "hollow"\ntitle = "t"\n[fault]\nvariant = "missing_yield"\n[fix]\nvariant = "app"\n'
        '[[steps]]\nkind = "request"\npath = "/todos/1"\nexpect.fault = { status = 404 }\n'
        '[[steps]]\nkind = "request"\npath = "/todos"\nexpect.fix = { ok = 1 }\n'
        '[explain]\nwhy = "w"\nfix = "f"\nremember = "r"\n'
        '[learn]\nfile = "get_db.py"\nstarter = "faults.missing_yield"\nsolution = "app.database:get_db"\n'
        'task = "t"\nhints = ["h"]\nquestions = [{ ask = "a", answer = "b" }]\n'
    )
    learner = tmp_path / "get_db.py"
    learner.write_text((CATALOGUE_DIR.parent / "faults" / "missing_yield.py").read_text())
    outcome = check_file(registry, Entry(load_file(registry, path), path), learner)
    assert not outcome.fixed and outcome.headline.startswith("proves nothing"), outcome
    assert outcome.details == ["held on both: step 1 status = 404"], outcome
