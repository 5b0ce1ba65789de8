"""Alembic environment: uses the connection handed over in ``config.attributes`` (see app/migrate.py), else
the app's configured database (``alembic`` run from the project root with ``alembic.ini``)."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine

from app import settings
from app.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # `alembic` run from the command line: its log settings, and the app's configured database.
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = create_engine(settings.database_url())
    with engine.begin() as own_connection:
        _run(own_connection)
    engine.dispose()


def _numbered(context_: Any, revision: Any, directives: list[Any]) -> None:
    """New revisions follow the project's numbering (0001, 0002, ...) instead of a random hex id."""
    head = ScriptDirectory.from_config(config).get_current_head()
    asked_for = getattr(config.cmd_opts, "rev_id", None)  # `alembic revision --rev-id X` wins
    if directives and head is not None and head.isdigit() and not asked_for:
        directives[0].rev_id = f"{int(head) + 1:04d}"


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """A migration stores what the database holds: UTCDateTime is a plain DateTime there."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        process_revision_directives=_numbered,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations()
