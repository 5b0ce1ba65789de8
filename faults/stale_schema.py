"""The app prepares its schema with ``create_all()`` instead of running migrations.

``create_all()`` creates missing tables but never alters an existing one. The model has ``priority``; a
database made before that column existed keeps its old ``todos`` table, so every query that names
``todos.priority`` fails with ``no such column`` and every insert with ``has no column named priority``.
"""

from sqlalchemy import Engine

from app.main import create_app
from app.models import Base


def create_tables_only(engine: Engine) -> None:
    Base.metadata.create_all(engine)  # BUG: an existing table is left as it is


app = create_app(prepare_schema=create_tables_only)
