"""Schema drift: the app's models against the tables of a database the user points at, by alembic's own
comparison. Read-only: SQLite is opened with ``mode=ro``, PostgreSQL in a read-only transaction; the
doctor never alters a user's database.

Run as ``FAULTLAB_COMPARE_URL=URL python -m faultlab.doctor.drift MODULE`` in a process of its own (importing
the user's app runs its code; the lab's process stays clean): prints one JSON line, {"differences": [...]}
or {"error": "..."}.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from typing import Any

from faultlab.doctor.declared import Declared

__all__ = ["differences"]


def _metadata(module_name: str) -> Any:
    """Every MetaData the app's loaded modules hold (its DeclarativeBase's, SQLModel's), merged by table."""
    import importlib

    from sqlalchemy import MetaData

    importlib.import_module(module_name)
    found: dict[int, MetaData] = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if name.startswith(("sqlalchemy", "sqlmodel", "faultlab.", "alembic", "pydantic")):
            continue
        for value in list(vars(module).values()):
            # Static lookup on classes only: a dynamic getattr runs any __getattr__ (ctypes.cdll's loads a library).
            metadata = inspect.getattr_static(value, "metadata", None) if isinstance(value, type) else None
            if isinstance(value, MetaData):
                metadata = value
            if isinstance(metadata, MetaData) and metadata.tables:
                found[id(metadata)] = metadata
    return list(found.values())


def differences(module_name: str, url: str) -> list[dict[str, Any]]:
    """Each difference in words (``text``), with where the models declare it (``where`` and ``role``, from
    ``faultlab.doctor.declared``) or why no line can be named (``unlocated``)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine, make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    else:
        engine = create_engine(parsed.set(drivername="postgresql+psycopg"))
    found = []
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            context = MigrationContext.configure(connection)
            metadatas = _metadata(module_name)
            declared = Declared()
            for metadata in metadatas:
                for diff in compare_metadata(context, metadata):
                    found.append({"text": _describe(diff), **_declared_at(declared, diff)})
            connection.rollback()
    finally:
        engine.dispose()
    return found


def _describe(diff: Any) -> str:
    """alembic's tuples in words: ('add_column', schema, table, Column) -> 'the model has todos.x, ...'."""
    if isinstance(diff, list):  # a modification comes as a list of tuples
        return "; ".join(_describe(d) for d in diff)
    kind = diff[0]
    if kind == "add_table":
        return f"table {diff[1].name}: in the models, not in the database"
    if kind == "remove_table":
        return f"table {diff[1].name}: in the database, not in the models"
    if kind == "add_column":
        return f"column {diff[2]}.{diff[3].name}: in the models, not in the database"
    if kind == "remove_column":
        return f"column {diff[2]}.{diff[3].name}: in the database, not in the models"
    if kind in ("add_index", "remove_index"):
        where = "in the models, not in the database" if kind == "add_index" else "in the database, not in the models"
        return f"index {diff[1].name} on {diff[1].table.name}: {where}"
    if kind == "modify_type":
        return f"column {diff[2]}.{diff[3]}: type {diff[5]} in the database, {diff[6]} in the models"
    if kind == "modify_nullable":
        return f"column {diff[2]}.{diff[3]}: nullable {diff[5]} in the database, {diff[6]} in the models"
    return f"{kind}: {' '.join(str(part) for part in diff[1:])}"


def _declared_at(declared: Declared, diff: Any) -> dict[str, Any]:
    """Where the models declare what differs (a modification's list: its first change), or why nowhere."""
    first = diff[0] if isinstance(diff, list) else diff
    kind = first[0]
    if kind == "add_table":
        return declared.table(first[1].name, f"declares table {first[1].name}, which the database lacks")
    if kind == "remove_table":
        return {"unlocated": f"table {first[1].name} is in the database only: no model declares it"}
    if kind in ("add_column", "remove_column"):
        table, column = first[2], first[3].name
        if kind == "add_column":
            return declared.column(table, column, f"declares {table}.{column}, which the database lacks")
        return declared.table(table, f"the model of {table}, which declares no {column}: the database has it")
    if kind in ("modify_type", "modify_nullable"):
        return declared.column(first[2], first[3], f"declares {first[2]}.{first[3]}, which the database has otherwise")
    if kind in ("add_index", "remove_index"):
        index, table = first[1], first[1].table.name
        role = f"the index {index.name} on {table} differs from the database's"
        columns = [column.name for column in index.columns]
        return declared.column(table, columns[0], role) if len(columns) == 1 else declared.table(table, role)
    return {"unlocated": f"alembic's {kind} difference is not tied to a model's line"}


if __name__ == "__main__":
    try:
        print(json.dumps({"differences": differences(sys.argv[1], os.environ["FAULTLAB_COMPARE_URL"])}))
    except Exception as exc:  # the user's module or database: reported in one line by the doctor
        print(json.dumps({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}))
