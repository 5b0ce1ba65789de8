"""Where the app's models declare a table or a column: the line a schema-drift finding points to. Read from the
mapped class's own source (``inspect``, then ``ast``): the line that declares the attribute mapped to the
column, else the ``class`` line; a table no mapped class declares has no line, and the finding says why.

Runs where ``faultlab.doctor.drift`` runs, in the process that imported the user's app; it reads the classes
the app's modules hold and never calls the app's code.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from typing import Any

__all__ = ["Declared", "mapped_classes"]

_LIBRARIES = ("sqlalchemy", "sqlmodel", "faultlab.", "alembic", "pydantic")


def mapped_classes() -> dict[str, type]:
    """By table name: the mapped class of the app's modules whose own table it is (a single-table subclass shares
    its parent's, which keeps it)."""
    from sqlalchemy import Table
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import Mapper

    found: dict[str, type] = {}
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith(_LIBRARIES):
            continue
        for value in list(vars(module).values()):
            mapper = sa_inspect(value, raiseerr=False) if isinstance(value, type) else None
            if not isinstance(mapper, Mapper) or not isinstance(mapper.local_table, Table):
                continue
            if mapper.inherits is None or mapper.inherits.local_table is not mapper.local_table:
                found.setdefault(mapper.local_table.name, mapper.class_)
    return found


def _body_lines(cls: type) -> tuple[int, dict[str, int]] | None:
    """The ``class`` line of ``cls`` and the line of each attribute its body assigns (None: no source)."""
    try:
        lines, first = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return None
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if node is None:
        return None
    assigned: dict[str, int] = {}
    for statement in node.body:
        targets = [statement.target] if isinstance(statement, ast.AnnAssign) else getattr(statement, "targets", [])
        if isinstance(statement, ast.AnnAssign | ast.Assign):
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, first + statement.lineno - 1)
    return first + node.lineno - 1, assigned


class Declared:
    """The lines of the app's mapped classes, for one comparison's differences."""

    def __init__(self) -> None:
        self.classes = mapped_classes()

    def table(self, name: str, role: str) -> dict[str, Any]:
        """The ``class`` line of the table's mapped class, or why there is none."""
        cls = self.classes.get(name)
        if cls is None:
            return {"unlocated": f"no mapped class of the app's modules declares table {name}"}
        found = _body_lines(cls)
        if found is None:
            return {"unlocated": f"the source of {cls.__qualname__}, the mapped class of {name}, cannot be read"}
        return self._at(cls, found[0], role)

    def column(self, table: str, column: str, role: str) -> dict[str, Any]:
        """The line that declares the attribute mapped to ``table.column`` (in the class or a class it inherits
        from), else the class's line."""
        from sqlalchemy import inspect as sa_inspect

        cls = self.classes.get(table)
        if cls is None:
            return self.table(table, role)
        attributes: Any = sa_inspect(cls).column_attrs
        keys = [prop.key for prop in attributes if any(getattr(c, "name", None) == column for c in prop.columns)]
        owners = [owner for owner in cls.__mro__ if not owner.__module__.startswith((*_LIBRARIES, "builtins"))]
        for key in keys:
            for owner in owners:  # the class itself, then a mixin or base of the app's that declares it
                found = _body_lines(owner)
                if found is not None and key in found[1]:
                    return self._at(owner, found[1][key], role)
        return self.table(table, f"{role} (no line of its class declares {column})")

    def _at(self, cls: type, line: int, role: str) -> dict[str, Any]:
        where = {"file": inspect.getsourcefile(cls) or "", "line": line, "function": cls.__qualname__}
        return {"where": where, "role": role}
