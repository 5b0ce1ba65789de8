"""Add the tags table (a todo's labels) and todos.created_by_ip (kept server-side, never served).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("todos", sa.Column("created_by_ip", sa.String(45), nullable=True))
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("todo_id", sa.Integer(), sa.ForeignKey("todos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.create_index("ix_tags_todo_id", "tags", ["todo_id"])


def downgrade() -> None:
    op.drop_index("ix_tags_todo_id", table_name="tags")
    op.drop_table("tags")
    with op.batch_alter_table("todos") as batch:
        batch.drop_column("created_by_ip")
