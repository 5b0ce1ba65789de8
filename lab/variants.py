"""Variant names: ``app`` (the correct API) and one per module in ``faults/``, found without importing."""

from __future__ import annotations

import ast
from pathlib import Path

from lab.errors import UnknownNameError

__all__ = ["CORRECT", "names", "problem_with", "require", "source_of", "target"]

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


def source_of(reference: str) -> tuple[str, str]:
    """``module`` or ``module:name`` -> (where, source), read from the project's files without importing.

    Importing would pull in FastAPI and SQLAlchemy just to print a dozen lines.
    """
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
    raise LookupError(f"{reference}: {where} defines no function or class {name!r}")
