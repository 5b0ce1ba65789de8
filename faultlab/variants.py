"""Variants: what a run serves. ``app`` (the correct API), a module of ``faults/``, or any importable ASGI app
(``module:attribute``, from a directory of the user's) with, optionally, its engine.

Names are found without importing: importing would pull in FastAPI and SQLAlchemy just to list them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from faultlab.errors import UnknownNameError, UsageError

__all__ = [
    "CORRECT",
    "CORRECT_ASYNC",
    "PROJECT_ROOT",
    "Variant",
    "lab_command",
    "names",
    "problem_with",
    "resolve",
    "source_of",
]


def _example_root() -> Path:
    """Where the lab's own example lives (``app/``, ``faults/``, ``experiments/``): the top of a checkout, or
    ``faultlab/example/`` once installed. Only the lab's own servers import from it: it is never put on the
    import path of a user's app, whose package may well be named ``app`` too."""
    package = Path(__file__).resolve().parent
    installed = package / "example"
    return installed if (installed / "app").is_dir() else package.parent


PROJECT_ROOT = _example_root()


EXAMPLE_NEEDS = {"fastapi": (0, 165)}  # max_body_size; the package itself asks for less (pyproject.toml)


def check_example_requirements() -> None:
    """The lab's example app needs a newer FastAPI than faultlab itself: say so before a run, not in a server's log."""
    from importlib.metadata import PackageNotFoundError, version

    for name, needed in EXAMPLE_NEEDS.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "none"
        # The leading digits of each part: a pre-release (0.170rc1) counts as its release.
        parts = tuple(int(m.group()) for p in installed.split(".")[:2] if (m := re.match(r"\d+", p)))
        if parts < needed:
            wanted = ".".join(map(str, needed))
            raise UsageError(
                f"the lab's example app needs {name} {wanted} or newer (installed: {installed}); "
                f"pip install -U '{name}>={wanted}' in the lab's venv (the doctor works without it)"
            )


def lab_command() -> str:
    """How to run the lab again, as a line to paste: this checkout's run_lab.py, else the installed command."""
    import sys

    run_lab = PROJECT_ROOT / "run_lab.py"
    return f"{sys.executable} {run_lab}" if run_lab.is_file() else f"{sys.executable} -m faultlab"


FAULTS_DIR = PROJECT_ROOT / "faults"
CORRECT = "app"
CORRECT_ASYNC = "async_app"  # the same API on AsyncSession (app/async_main.py)
_CORRECT_TARGETS = {CORRECT: "app.main:app", CORRECT_ASYNC: "app.async_main:app"}


@dataclass(frozen=True)
class Variant:
    name: str
    target: str  # module:attribute of the ASGI app
    app_dir: Path = PROJECT_ROOT  # where its modules are imported from
    engine: str | None = None  # module:attribute of its engine, when the harness cannot find it


def names() -> list[str]:
    faults = sorted(p.stem for p in FAULTS_DIR.glob("*.py") if not p.stem.startswith("_"))
    return [*_CORRECT_TARGETS, *faults]


def resolve(name: str) -> Variant:
    """The variant an experiment file names: ``app``, a module of faults/ (its ``app``), or ``module:attribute``
    for another app in the same module (a fault module may hold its fixed app beside the broken one)."""
    require(name)
    module, _, attribute = name.partition(":")
    return Variant(name, _CORRECT_TARGETS.get(name) or f"faults.{module}:{attribute or 'app'}")


def problem_with(variant: str) -> str | None:
    try:
        require(variant)
    except UnknownNameError as exc:
        return str(exc)
    return None


def require(variant: str) -> None:
    module, _, attribute = variant.partition(":")
    if module not in names() or (attribute and module in _CORRECT_TARGETS):
        raise UnknownNameError(
            "variant", module, names(), hint=f"Variants are 'app', 'async_app' and the modules in {FAULTS_DIR}."
        )
    if attribute and not _defines(FAULTS_DIR / f"{module}.py", attribute):
        raise UnknownNameError(
            "variant", variant, [], hint=f"faults/{module}.py assigns no {attribute!r} at its top level."
        )


def _defines(path: Path, name: str) -> bool:
    """Whether a module assigns ``name`` at its top level (read, not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        for node in tree.body
    )


def source_of(reference: str) -> tuple[str, str]:
    """``module`` or ``module:name`` -> (where, source), read from the project's files without importing."""
    module_name, _, name = reference.partition(":")
    path = PROJECT_ROOT.joinpath(*module_name.split(".")).with_suffix(".py")
    where = path.relative_to(PROJECT_ROOT).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LookupError(f"{reference}: no file {where}") from None
    tree = ast.parse(text)
    lines = text.splitlines()
    if not name:
        body = tree.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            lines = lines[body[0].end_lineno or 0 :]
        return where, "\n".join(lines).strip() + "\n"
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            return f"{where}:{name}", "\n".join(lines[start : node.end_lineno]) + "\n"
        if _assigns(node, name):  # a module-level table, such as the app's routes
            return f"{where}:{name}", "\n".join(lines[node.lineno - 1 : node.end_lineno]) + "\n"
    raise LookupError(f"{reference}: {where} defines no function, class or variable {name!r}")


def _assigns(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == name
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
