"""Before the app starts: which interpreter serves it (``--python``, or the project's ``.venv``), what its import
says about it (``python -m faultlab.inside.identity``: its file and its engine's database, under the harness's
guard), and the set-up commands (``--setup``, e.g. ``alembic upgrade head``), run in the project's dir against the
throwaway database, with the same settings as the app."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from faultlab.backends.base import redact
from faultlab.doctor.identity import AppIdentity
from faultlab.errors import UsageError
from faultlab.inside import wire
from faultlab.server.harness_copy import harness_only

__all__ = ["SETUP_TIMEOUT_S", "identify", "project_python", "run_setup", "shown_command"]

SETUP_TIMEOUT_S = 300.0
IDENTIFY_TIMEOUT_S = 60.0
_SECRET = ("pass", "token", "secret", "key")


def project_python(app_dir: Path, given: Path | None) -> Path | None:
    """``--python``, checked; else the project's own ``.venv`` (in the app's dir or the one above it); else None:
    the doctor's own interpreter serves the app."""
    if given is not None:
        if not (given.is_file() and os.access(given, os.X_OK)):
            raise UsageError(
                f"--python {given}: not an executable file; give the project's interpreter, e.g. .venv/bin/python"
            )
        return given.absolute()  # a venv's python is a symlink: resolving it would leave the venv
    for where in (app_dir, app_dir.parent):
        found = where / ".venv" / "bin" / "python"
        if found.is_file() and os.access(found, os.X_OK):
            return found.absolute()
    return None


def _environment(env: Mapping[str, str], python: Path | None) -> dict[str, str]:
    """The shell's environment (not the lab's own variables) with the app's settings, the interpreter's bin first."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in wire.APP_SETTINGS and not k.startswith(("FAULTLAB_", "UVICORN_", "PYTHONPATH"))
    }
    bin_dir = str((python or Path(sys.executable)).parent)
    return {**inherited, **env, "PATH": os.pathsep.join([bin_dir, inherited.get("PATH", os.defpath)])}


def identify(
    target: str, *, app_dir: Path, engine: str | None, env: Mapping[str, str], python: Path | None, workdir: Path
) -> tuple[AppIdentity | None, str]:
    """The app imported (not served) under the harness's guard: its identity, or None and what it printed."""
    harness = harness_only(workdir / "harness")
    variables = {
        **_environment(env, python),
        wire.TARGET_ENV: target,
        "PYTHONPATH": os.pathsep.join([str(app_dir), str(harness)]),
    }
    if engine:
        variables[wire.ENGINE_ENV] = engine
    try:
        done = subprocess.run(
            [str(python or sys.executable), "-m", "faultlab.inside.identity"],
            cwd=workdir,
            env=variables,
            capture_output=True,
            text=True,
            timeout=IDENTIFY_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"importing {target} took more than {IDENTIFY_TIMEOUT_S:.0f} s; does it wait on something?"
        ) from None
    if done.returncode != 0:
        return None, done.stderr
    lines = done.stdout.strip().splitlines()
    return AppIdentity.from_json(json.loads(lines[-1])), ""


def shown_command(command: str) -> str:
    """A set-up command as the reports show it: URLs without their password, a value after ``--password`` (or a
    ``PASSWORD=...``, a token, a secret, a key), after ``-H``/``--header``/``-u``/``--user`` and glued to ``-p``
    hidden."""
    words, shown, hide_next = shlex.split(command), [], False
    for word in words:
        name, equals, _ = word.partition("=")
        if hide_next:
            shown.append("***")
        elif equals and any(s in name.lower() for s in _SECRET):
            shown.append(f"{name}=***")
        else:
            shown.append(redact(word))
        hide_next = (word.startswith("-") and not equals and any(s in word.lower() for s in _SECRET)) or word in (
            "-H",
            "--header",
            "-u",
            "--user",
        )  # curl's headers (a bearer token) and user:password
        if word.startswith("-p") and len(word) > 2 and not word.startswith("--"):
            shown[-1], hide_next = "-p***", False  # a password glued to its flag (mysql -pSECRET)
    return shlex.join(shown)


def run_setup(commands: list[str], *, app_dir: Path, env: Mapping[str, str], python: Path | None, log: Path) -> None:
    """Each command in the project's dir, in order, with the app's settings; the first that fails stops the doctor."""
    variables = _environment(env, python)
    for command in commands:
        with open(log, "ab") as out:
            out.write(f"$ {shown_command(command)}\n".encode())
            out.flush()
            try:
                done = subprocess.run(
                    shlex.split(command),
                    cwd=app_dir,
                    env=variables,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=SETUP_TIMEOUT_S,
                    stdin=subprocess.DEVNULL,
                )
            except FileNotFoundError:
                raise UsageError(
                    f"--setup {shown_command(command)!r}: no program {shlex.split(command)[0]!r} on the PATH (the "
                    "interpreter's bin dir first); install it in the project's environment, or give --python"
                ) from None
            except subprocess.TimeoutExpired:
                raise UsageError(
                    f"--setup {shown_command(command)!r} ran for more than {SETUP_TIMEOUT_S:.0f} s"
                ) from None
        if done.returncode != 0:
            tail = "\n".join(
                redact(line) for line in log.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
            )
            raise UsageError(
                f"--setup {shown_command(command)!r} failed with exit code {done.returncode} (run in {app_dir}, "
                f"against the throwaway database); its last lines:\n{tail}"
            )
