"""Variant names: ``app`` (the correct API) and one per module in ``faults/``, found without importing."""

from __future__ import annotations

import ast
import inspect
from importlib import import_module
from pathlib import Path

from lab.errors import UnknownNameError

__all__ = ["CORRECT", "names", "target", "problem_with", "require", "docstring", "source_of"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FAULTS_DIR = PROJECT_ROOT / "faults"
CORRECT = "app"


def names() -> list[str]:
    faults = sorted(p.stem for p in FAULTS_DIR.glob("*.py") if not p.stem.startswith("_"))
    return [CORRECT, *faults]


def target(variant: str) -> str:
    """The ``module:attribute`` the server imports for a variant."""
    require(variant)
    return "app.main:app" if variant == CORRECT else f"faults.{variant}:app"


def problem_with(variant: str) -> str | None:
    try:
        require(variant)
    except UnknownNameError as exc:
        return str(exc)
    return None


def require(variant: str) -> None:
    if variant not in names():
        raise UnknownNameError("variant", variant, names(), hint=f"Variants are 'app' and the modules in {FAULTS_DIR}.")


def docstring(variant: str) -> str:
    """The variant's docstring, read from its source, so listing never imports FastAPI."""
    path = PROJECT_ROOT / "app" / "main.py" if variant == CORRECT else FAULTS_DIR / f"{variant}.py"
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def source_of(reference: str) -> tuple[str, str]:
    """``module`` or ``module:object`` -> (where, source). Only the project's own ``app``/``faults`` code."""
    module_name, _, attribute = reference.partition(":")
    module = import_module(module_name)
    obj = getattr(module, attribute) if attribute else module
    source = inspect.getsource(obj)
    where = Path(inspect.getsourcefile(obj) or module_name).resolve().relative_to(PROJECT_ROOT).as_posix()
    if not attribute:
        source = _without_module_docstring(source)
    return (f"{where}:{attribute}" if attribute else where), source


def _without_module_docstring(source: str) -> str:
    tree = ast.parse(source)
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines = source.splitlines()
        source = "\n".join(lines[first.end_lineno :])
    return source.strip() + "\n"
