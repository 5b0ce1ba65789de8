"""What installing faultlab puts in a venv: one top-level name, ``faultlab``. A project's own package named
``app`` (the usual FastAPI layout) stays the project's, installed beside faultlab and after uninstalling it,
and the installed lab still runs its own example from ``faultlab/example``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_APP = '"""The project\'s own app package."""\nWHO = "the project"\n'


def _declared() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools: dict[str, object] = data["tool"]["setuptools"]
    return setuptools


def test_every_package_of_faultlab_is_declared() -> None:
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "faultlab").rglob("__init__.py")}
    declared = set(_declared()["packages"])  # type: ignore[call-overload]
    assert found <= declared, f"add to [tool.setuptools] packages: {sorted(found - declared)}"
    assert all(name.startswith("faultlab") for name in declared), declared


def _tracked_files() -> list[str] | None:
    """The files git tracks in this checkout; None when it is not a git work tree of its own (a tarball, an sdist)
    or git is missing: what else lies in the tree (a venv, build output, a local todos.db) is not the project's."""
    try:
        top = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"], check=True, capture_output=True, text=True
        ).stdout.strip()
        if Path(top).resolve() != ROOT:
            return None
        files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [name for name in files.decode().split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tracked = _tracked_files()
    if tracked is None:
        pytest.skip(f"the wheel is built from the files git tracks; {ROOT} is not a git work tree (or git is missing)")
    out = tmp_path_factory.mktemp("wheel")
    # From a copy: a build writes build/ and *.egg-info next to the sources.
    source = tmp_path_factory.mktemp("source")
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = out.glob("faultlab-*.whl")
    return built


def test_the_wheel_has_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"faultlab", wheel.name.split("-py")[0] + ".dist-info"}
    shipped = ["example/app/main.py", "example/experiments/missing-yield.toml", "example/faults/missing_yield.py",
               "example/app/migrations/script.py.mako", "reports/templates/report.html.j2"]  # fmt: skip
    assert not [f for f in shipped if f"faultlab/{f}" not in names]


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project of the usual layout, installed in its venv (non-editable) as projects often are."""
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "__init__.py").write_text(PROJECT_APP)
    (project / "app" / "main.py").write_text("from app import WHO\n")
    (project / "app" / "models.py").write_text("MODELS = 'the project'\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=70.1"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "project"\nversion = "1"\n[tool.setuptools]\npackages = ["app"]\n'
    )
    yield project


def test_installing_and_uninstalling_faultlab_leaves_the_projects_app_as_it_was(
    wheel: Path, project: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "-q"]
    # Dependencies come from this environment (the .pth below): nothing is downloaded.
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(project)], check=True, capture_output=True, timeout=120)
    subprocess.run([*pip, "install", "--no-deps", *map(str, wheels.glob("*.whl"))], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    before = _digest(site / "app")
    subprocess.run([*pip, "install", "--no-deps", str(wheel)], check=True, timeout=120)
    # The dependencies: this environment's, after the venv's own packages (a path line in a .pth is appended, and
    # the .pth files in that directory, this checkout's editable install among them, are not read).
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "fastapi").is_dir())
    (site / "zz_test_dependencies.pth").write_text(ours + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(python), "-c", "import app, faultlab; print(app.WHO); print(faultlab.__file__)"],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True,
    ).stdout.split("\n")  # fmt: skip
    assert where[0] == "the project", where
    assert where[1].startswith(str(site)), f"faultlab came from {where[1]}, not the wheel"
    assert _digest(site / "app") == before

    # The installed lab lists its own example, and runs it, from the project's folder, whose `app` it ignores.
    listed = subprocess.run(
        [str(venv / "bin" / "faultlab"), "list", "--json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "missing-yield" in listed.stdout
    ran = subprocess.run(
        [str(venv / "bin" / "faultlab"), "missing-yield", "-j", "1", "--out", str(tmp_path / "out")],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "verdict: as expected" in ran.stderr + ran.stdout

    subprocess.run([*pip, "uninstall", "-y", "faultlab"], check=True, timeout=120)
    assert not (site / "faultlab").exists()
    assert _digest(site / "app") == before
    after = subprocess.run(
        [str(python), "-c", "import app; print(app.WHO)"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert after.stdout.strip() == "the project", after.stderr


def test_only_running_the_example_asks_for_its_fastapi(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package asks for less than the example app needs (a project's FastAPI is not upgraded for the doctor's
    sake); a catalogue run on an older one stops with what to install."""
    from faultlab import variants
    from faultlab.errors import UsageError

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (fastapi,) = [d for d in dependencies if d.startswith("fastapi>=")]
    floor = tuple(int(p) for p in fastapi.split(">=")[1].split(",")[0].split("."))
    assert floor < variants.EXAMPLE_NEEDS["fastapi"], fastapi
    variants.check_example_requirements()  # this environment has what the example needs
    monkeypatch.setitem(variants.EXAMPLE_NEEDS, "fastapi", (99, 0))
    with pytest.raises(UsageError, match=r"needs fastapi 99\.0 or newer .*pip install -U 'fastapi>=99\.0'"):
        variants.check_example_requirements()
